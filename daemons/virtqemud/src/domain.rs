//! libvirt domain XML: model, parsing and formatting (see the submodules).
