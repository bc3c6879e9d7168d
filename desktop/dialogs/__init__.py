"""Dialogs: messages, the DICOM series browser, About."""
