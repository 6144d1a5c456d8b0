//! Running QEMU: command line, process and QMP monitor (see the submodules).
