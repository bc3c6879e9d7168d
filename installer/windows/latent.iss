; Inno Setup 6 script for Latent (Windows, per-user, offline).
;
; Built by installer/build.py on Windows after PyInstaller:
;   ISCC.exe /DAppVersion=0.1.0 /DVariant=cpu /DBundleDir=..\..\dist\latent-cpu ^
;            /DOutputDir=..\..\dist installer\windows\latent.iss
; The defaults below match that layout when run from this folder.
;
; Per-user: no administrator rights needed (PrivilegesRequired=lowest installs under
; %LOCALAPPDATA%\Programs\Latent and writes only HKCU). The payload with PyTorch is
; 1-5 GB; a single Inno Setup executable is limited to about 2 GB, so DiskSpanning splits
; it into latent-setup-*.exe plus latent-setup-*-N.bin slices that must stay together.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef Variant
  #define Variant "cpu"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\latent-" + Variant
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif
#define AppName "Latent"
#define AppExe "latent.exe"
; A fixed AppId per variant: upgrades replace the same install; cpu and cuda can coexist.
#if Variant == "cuda"
  #define AppIdValue "{{6B1C2F4E-4E2B-4B8E-9A57-3D3F1C0AC0DA}"
#else
  #define AppIdValue "{{6B1C2F4E-4E2B-4B8E-9A57-3D3F1C0A0C00}"
#endif

[Setup]
AppId={#AppIdValue}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion} ({#Variant})
AppPublisher=Latent developers
DefaultDirName={autopf}\{#AppName}{#Variant == "cuda" ? " CUDA" : ""}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=latent-setup-{#AppVersion}-{#Variant}
SetupIconFile=..\..\resources\icons\latent.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName} {#AppVersion} ({#Variant})
Compression=lzma2/normal
SolidCompression=no
; Payloads over 2 GB (the cuda variant, about 5 GB) need slices: setup.exe + .bin files.
DiskSpanning=yes
DiskSliceSize=max
WizardStyle=modern
ChangesAssociations=no
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole PyInstaller one-folder bundle: latent.exe and _internal\ (Python, Qt, torch,
; models, samples). ignoreversion: always replace, the bundle is versioned as a whole.
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"
Name: "{group}\{#AppName} self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\{#AppExe}"" --selftest"; WorkingDir: "{app}"
Name: "{group}\{cm:UninstallProgram,{#AppName}}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Python byte-code caches written next to the bundle at run time, if any.
Type: filesandordirs; Name: "{app}\_internal\__pycache__"
