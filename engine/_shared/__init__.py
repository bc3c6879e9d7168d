"""Private helpers by topic: output files (:mod:`.files`), device choice (:mod:`.device`),
system report (:mod:`.sysinfo`), bundled resources (:mod:`.resources`). Imports nothing heavy."""
