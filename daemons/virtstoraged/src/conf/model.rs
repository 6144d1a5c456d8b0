//! The part of libvirt's storage definitions (`virStoragePoolDef`,
//! `virStorageVolDef`) that modvirt models: `dir` pools and the file and
//! directory volumes in them.

use modvirt_xml::xml_enum;

xml_enum! {
    /// `<pool type>`: every type libvirt knows (`virStoragePoolType`).
    /// modvirt builds only [`Dir`](Self::Dir) pools.
    PoolType {
        Dir => "dir",
        Fs => "fs",
        Netfs => "netfs",
        Logical => "logical",
        Disk => "disk",
        Iscsi => "iscsi",
        IscsiDirect => "iscsi-direct",
        Scsi => "scsi",
        Mpath => "mpath",
        Rbd => "rbd",
        Sheepdog => "sheepdog",
        Gluster => "gluster",
        Zfs => "zfs",
        Vstorage => "vstorage",
    }
}

xml_enum! {
    /// `<volume type>` (`virStorageVolType`).
    VolType {
        File => "file",
        Block => "block",
        Dir => "dir",
        Network => "network",
        Netdir => "netdir",
        Ploop => "ploop",
    }
}

impl VolType {
    /// The `virStorageVolType` number (`virStorageVolGetInfo`'s `type`).
    pub fn number(self) -> i32 {
        match self {
            Self::File => 0,
            Self::Block => 1,
            Self::Dir => 2,
            Self::Network => 3,
            Self::Netdir => 4,
            Self::Ploop => 5,
        }
    }
}

xml_enum! {
    /// `<target><format type>` of a volume in a `dir` pool: libvirt's
    /// file formats (`virStorageFileFormat`, without `none`). modvirt
    /// creates `raw`, `qcow2` and `dir` volumes.
    VolFormat {
        Raw => "raw",
        Dir => "dir",
        Bochs => "bochs",
        Cloop => "cloop",
        Dmg => "dmg",
        Iso => "iso",
        Vpc => "vpc",
        Vdi => "vdi",
        Fat => "fat",
        Vhd => "vhd",
        Ploop => "ploop",
        Cow => "cow",
        Qcow => "qcow",
        Qcow2 => "qcow2",
        Qed => "qed",
        Vmdk => "vmdk",
        Luks => "luks",
    }
}

xml_enum! {
    /// A qcow2 feature under `<target><features>` (`virStorageFileFeature`).
    QcowFeature {
        LazyRefcounts => "lazy_refcounts",
        ExtendedL2 => "extended_l2",
    }
}

/// `<permissions>`: each part may be left out (libvirt's `-1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Perms {
    /// Permission bits (at most `0777`).
    pub mode: Option<u32>,
    pub owner: Option<u32>,
    pub group: Option<u32>,
    /// A security label, kept as given.
    pub label: Option<String>,
}

impl Perms {
    pub fn is_empty(&self) -> bool {
        *self == Perms::default()
    }
}

/// A storage pool: what `pool-define` keeps and `pool-dumpxml` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolDef {
    pub name: String,
    pub uuid: [u8; 16],
    /// Always [`PoolType::Dir`] once parsed.
    pub pool_type: PoolType,
    /// Bytes, as the last refresh found them (0 before the first).
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
    /// `<target><path>`, cleaned up as `virFileSanitizePath` does.
    pub target_path: String,
    /// `<target><permissions>`: as configured, then as a refresh found
    /// the directory.
    pub perms: Perms,
}

/// A point in time as `stat` gives it (seconds, nanoseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: i64,
}

/// `<timestamps>` of a volume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timestamps {
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
}

/// A volume: what `vol-create` reads and `vol-dumpxml` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolDef {
    pub name: String,
    /// For a `dir` pool: the volume's path.
    pub key: Option<String>,
    pub vol_type: VolType,
    /// Bytes: the size a guest sees (a qcow2 image's virtual size).
    pub capacity: u64,
    /// Bytes taken on the host.
    pub allocation: u64,
    /// Whether the document gave `<allocation>` (else it is `capacity`).
    pub has_allocation: bool,
    /// Bytes of the file itself (0: not known, not printed).
    pub physical: u64,
    pub target: VolTarget,
}

/// `<target>` of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolTarget {
    pub path: Option<String>,
    pub format: VolFormat,
    pub perms: Perms,
    pub timestamps: Option<Timestamps>,
    /// qcow2: `0.10` or `1.1`.
    pub compat: Option<String>,
    /// qcow2: cluster size in bytes (0: not known, not printed).
    pub cluster_size: u64,
    /// qcow2 v3: the features set (printed as `<features/>` when empty).
    pub features: Option<Vec<QcowFeature>>,
}

impl VolTarget {
    pub fn new(format: VolFormat) -> Self {
        Self {
            path: None,
            format,
            perms: Perms::default(),
            timestamps: None,
            compat: None,
            cluster_size: 0,
            features: None,
        }
    }
}
