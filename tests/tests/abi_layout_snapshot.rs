//! The released plugin ABIs are frozen: every type that crosses the boundary in ABI
//! 1.0 to 1.3 (root modules, plugin lists, descriptors, handles, vtables, `Sample`,
//! errors, the logger) must keep exactly the layout recorded in `tests/abi-snapshots/`
//! when the version was released. abi_stable refuses a library whose layout differs, so
//! an edit of a released type would silently break every plugin built for it.
//!
//! A released snapshot is never rewritten. A new ABI minor gets a new snapshot file:
//! `CEILO_WRITE_NEW_ABI_SNAPSHOT=1 cargo test -p ceilo-tests --test abi_layout_snapshot`
//! writes the files that do not exist yet, and refuses to touch those that do.

use std::collections::HashSet;
use std::fmt::Write;
use std::path::PathBuf;

use abi_stable::type_layout::{TLData, TLFields, TypeLayout};
use abi_stable::StableAbi;
use ceilo_plugin_api::abi::{v1_0, v1_1, v1_2, v1_3};

/// A deterministic, readable dump of a type and of every type it reaches.
fn dump(roots: &[&'static TypeLayout]) -> String {
    let mut out = String::new();
    let mut seen = HashSet::new();
    for root in roots {
        walk(root, &mut seen, &mut out);
    }
    out
}

fn walk(
    l: &'static TypeLayout,
    seen: &mut HashSet<abi_stable::std_types::UTypeId>,
    out: &mut String,
) {
    // Identity by type id (only for this walk; never printed, so the dump stays the
    // same from build to build).
    if !seen.insert(l.get_utypeid()) {
        return;
    }
    // The package's major only: abi_stable accepts any minor of the same major, and a
    // 1.y crate release that adds functions must not look like a layout change.
    let version = l.package_version();
    let major = version.version.as_str().split('.').next().unwrap_or("?");
    let _ = writeln!(
        out,
        "type {} [{} {}.x] size {} align {}",
        l.full_type(),
        l.package(),
        major,
        l.size(),
        l.alignment()
    );
    let mut nested = Vec::new();
    match l.data() {
        TLData::Primitive(p) => {
            let _ = writeln!(out, "  primitive {p:?}");
        }
        TLData::Opaque => {
            let _ = writeln!(out, "  opaque");
        }
        TLData::Struct { fields } => {
            let _ = writeln!(out, "  struct");
            fields_of(fields, out, &mut nested);
        }
        TLData::Union { fields } => {
            let _ = writeln!(out, "  union");
            fields_of(fields, out, &mut nested);
        }
        TLData::Enum(e) => {
            let names: Vec<&str> = e.variant_names_iter().collect();
            let _ = writeln!(
                out,
                "  enum variants [{}] field counts {:?} discriminants {:?} {:?}",
                names.join(", "),
                e.field_count.as_slice(),
                e.discriminants,
                e.exhaustiveness
            );
            fields_of(e.fields, out, &mut nested);
        }
        TLData::PrefixType(p) => {
            let _ = writeln!(
                out,
                "  prefix type, first suffix field {}",
                p.first_suffix_field
            );
            fields_of(p.fields, out, &mut nested);
        }
    }
    // Types reached other than through fields: a prefix reference's pointee (the
    // vtable or root module itself), generic parameters.
    nested.extend(l.shared_vars().type_layouts().iter().map(|f| f()));
    for n in nested {
        walk(n, seen, out);
    }
}

fn fields_of(fields: TLFields, out: &mut String, nested: &mut Vec<&'static TypeLayout>) {
    for f in fields.iter() {
        let _ = writeln!(out, "  field {}: {}", f.name(), f.full_type());
        for func in f.function_range().iter() {
            let _ = writeln!(out, "    fn {}", one_line(&func.to_string()));
        }
        nested.push(f.layout());
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn snapshot_file(version: &str) -> PathBuf {
    ceilo_tests::workspace_root()
        .join("tests/abi-snapshots")
        .join(format!("abi-{version}.txt"))
}

fn check(version: &str, roots: &[&'static TypeLayout]) {
    let now = dump(roots);
    let file = snapshot_file(version);
    match std::fs::read_to_string(&file) {
        Ok(released) => {
            if released != now {
                let first = released
                    .lines()
                    .zip(now.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| released.lines().count().min(now.lines().count()));
                panic!(
                    "plugin ABI {version} is released and frozen, but its layout changed.\n\
                     First difference at line {} of {}:\n  released: {}\n  now:      {}\n\
                     Revert the change to the released types; to grow the ABI, add a new minor \
                     module (plugin-api/README.md, \"Rules for changing this crate\").",
                    first + 1,
                    file.display(),
                    released.lines().nth(first).unwrap_or("(end)"),
                    now.lines().nth(first).unwrap_or("(end)"),
                );
            }
        }
        Err(_) if std::env::var("CEILO_WRITE_NEW_ABI_SNAPSHOT").as_deref() == Ok("1") => {
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(&file, &now).expect("write snapshot");
        }
        Err(e) => panic!(
            "no layout snapshot for plugin ABI {version} at {} ({e}): when a new minor is \
             declared released, write it once with CEILO_WRITE_NEW_ABI_SNAPSHOT=1 and commit it",
            file.display()
        ),
    }
}

#[test]
fn abi_1_0_layout_is_frozen() {
    check(
        "1.0",
        &[
            <v1_0::PluginLibraryRef as StableAbi>::LAYOUT,
            <v1_0::PluginList as StableAbi>::LAYOUT,
            <v1_0::PollerVTableRef as StableAbi>::LAYOUT,
            <v1_0::NotificationVTableRef as StableAbi>::LAYOUT,
            <v1_0::TransformerVTableRef as StableAbi>::LAYOUT,
            <v1_0::PublisherVTableRef as StableAbi>::LAYOUT,
            <v1_0::BatchOutput as StableAbi>::LAYOUT,
            <v1_0::Sample as StableAbi>::LAYOUT,
            <ceilo_plugin_api::PluginError as StableAbi>::LAYOUT,
        ],
    );
}

#[test]
fn abi_1_1_layout_is_frozen() {
    check(
        "1.1",
        &[
            <v1_1::PluginLibraryRef as StableAbi>::LAYOUT,
            <v1_1::PluginList as StableAbi>::LAYOUT,
            <v1_1::PublisherVTableRef as StableAbi>::LAYOUT,
            <v1_1::Counter as StableAbi>::LAYOUT,
            <ceilo_plugin_api::log::HostLogger as StableAbi>::LAYOUT,
            <v1_1::PollerVTableRef as StableAbi>::LAYOUT,
            <v1_1::NotificationVTableRef as StableAbi>::LAYOUT,
            <v1_1::TransformerVTableRef as StableAbi>::LAYOUT,
            <v1_1::Sample as StableAbi>::LAYOUT,
        ],
    );
}

#[test]
fn abi_1_2_layout_is_frozen() {
    check(
        "1.2",
        &[
            <v1_2::PluginLibraryRef as StableAbi>::LAYOUT,
            <v1_2::PluginList as StableAbi>::LAYOUT,
            <v1_2::PollerVTableRef as StableAbi>::LAYOUT,
            <v1_2::NotificationVTableRef as StableAbi>::LAYOUT,
            <v1_2::TransformerVTableRef as StableAbi>::LAYOUT,
            <v1_2::PublisherVTableRef as StableAbi>::LAYOUT,
            <v1_2::BatchOutput as StableAbi>::LAYOUT,
            <v1_2::Counter as StableAbi>::LAYOUT,
            <ceilo_plugin_api::log::HostLogger as StableAbi>::LAYOUT,
            <ceilo_plugin_api::Sample as StableAbi>::LAYOUT,
            <ceilo_plugin_api::Text as StableAbi>::LAYOUT,
            <ceilo_plugin_api::PluginError as StableAbi>::LAYOUT,
        ],
    );
}

#[test]
fn abi_1_3_layout_is_frozen() {
    check(
        "1.3",
        &[
            <v1_3::PluginLibraryRef as StableAbi>::LAYOUT,
            <v1_3::PluginList as StableAbi>::LAYOUT,
            <v1_3::TraitPluginDescriptor as StableAbi>::LAYOUT,
            <v1_3::TraitPluginVTableRef as StableAbi>::LAYOUT,
            <v1_3::PollerVTableRef as StableAbi>::LAYOUT,
            <v1_3::NotificationVTableRef as StableAbi>::LAYOUT,
            <v1_3::TransformerVTableRef as StableAbi>::LAYOUT,
            <v1_3::PublisherVTableRef as StableAbi>::LAYOUT,
            <v1_3::BatchOutput as StableAbi>::LAYOUT,
            <v1_3::Counter as StableAbi>::LAYOUT,
            <ceilo_plugin_api::log::HostLogger as StableAbi>::LAYOUT,
            <ceilo_plugin_api::Sample as StableAbi>::LAYOUT,
            <ceilo_plugin_api::Text as StableAbi>::LAYOUT,
            <ceilo_plugin_api::PluginError as StableAbi>::LAYOUT,
        ],
    );
}

#[test]
fn the_dump_sees_a_change_in_a_vtable() {
    // The guard itself must be able to fail: two layouts that differ only in one
    // vtable field dump differently.
    let a = dump(&[<v1_0::PublisherVTableRef as StableAbi>::LAYOUT]);
    let b = dump(&[<v1_1::PublisherVTableRef as StableAbi>::LAYOUT]);
    assert_ne!(a, b);
    assert!(b.contains("field stats"), "{b}");
    assert!(a.contains("fn "), "function signatures are recorded: {a}");
}
