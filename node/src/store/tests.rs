//! The store on a real sled database in a scratch directory.

use std::path::Path;

use super::crypto::Sealer;
use super::{GalleryStore, NewPerson, default_key_file};
use crate::error::Error;
use clearway_gallery::{ModelId, PersonId, Template};

fn new_person() -> NewPerson {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/persons/hk-resident.toml");
    crate::store::read_person_file(&path).expect("example person parses")
}

/// A template whose int8 bytes form a long, recognisable run.
fn template() -> Template {
    let values: Vec<f32> = (0..128)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
        .collect();
    Template::quantize(ModelId::new("sface", "2021dec"), &values).expect("quantise")
}

fn files_contain(dir: &Path, needle: &[u8]) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .expect("read")
                .windows(needle.len())
                .any(|w| w == needle)
            {
                return true;
            }
        }
    }
    false
}

#[test]
fn records_and_templates_round_trip_and_are_sealed_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("g");
    let store = GalleryStore::open(&db, &default_key_file(&db)).expect("open");
    let person = store.add_person(new_person()).expect("add");
    assert_eq!(person.id, PersonId(1));
    let t = template();
    store.add_template(person.id, &t).expect("template");
    assert_eq!(store.templates(person.id).expect("read"), vec![t.clone()]);
    assert_eq!(store.person(person.id).expect("read").name, "CHAN Tai Man");
    let (index, skipped) = store.index(t.model(), 128).expect("index");
    assert_eq!((index.len(), skipped), (1, 0));
    drop(store);
    // Neither the template's bytes nor the person's document number are in the clear on disk.
    let bytes: Vec<u8> = t.data().iter().map(|v| *v as u8).collect();
    assert!(
        !files_contain(&db, &bytes[..32]),
        "template bytes stored in the clear"
    );
    assert!(
        !files_contain(&db, b"H60123456"),
        "document number stored in the clear"
    );
    // Reopening with the same key reads it back.
    let store = GalleryStore::open(&db, &default_key_file(&db)).expect("reopen");
    assert_eq!(store.persons().expect("list").len(), 1);
}

#[test]
fn cancellation_erases_and_ids_are_not_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("g");
    let store = GalleryStore::open(&db, &default_key_file(&db)).expect("open");
    let a = store.add_person(new_person()).expect("add").id;
    store.add_template(a, &template()).expect("template");
    store.cancel(a).expect("cancel");
    assert!(matches!(store.person(a), Err(Error::UnknownPerson(_))));
    assert!(matches!(store.templates(a), Err(Error::UnknownPerson(_))));
    assert!(matches!(
        store.add_template(a, &template()),
        Err(Error::UnknownPerson(_))
    ));
    assert_eq!(
        store
            .index(&ModelId::new("sface", "2021dec"), 128)
            .expect("index")
            .0
            .len(),
        0
    );
    let b = store.add_person(new_person()).expect("add").id;
    assert_eq!(
        b,
        PersonId(2),
        "a cancelled person's id is never given to someone else"
    );
}

#[test]
fn invalid_person_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("g");
    let store = GalleryStore::open(&db, &default_key_file(&db)).expect("open");
    let mut p = new_person();
    p.name = "  ".into();
    assert!(store.add_person(p).is_err());
    assert!(store.persons().expect("list").is_empty());
}

#[test]
fn sealed_values_are_bound_to_their_slot_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sealer = Sealer::create_key_file(&dir.path().join("k")).expect("key");
    let sealed = sealer.seal(b"persons", b"1", b"record").expect("seal");
    assert_eq!(
        sealer.open(b"persons", b"1", &sealed),
        Ok(b"record".to_vec())
    );
    assert!(
        sealer.open(b"persons", b"2", &sealed).is_err(),
        "moved to another slot"
    );
    assert!(
        sealer.open(b"templates", b"1", &sealed).is_err(),
        "moved to another tree"
    );
    let mut tampered = sealed.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(
        sealer.open(b"persons", b"1", &tampered).is_err(),
        "tampered"
    );
    assert!(
        sealer.open(b"persons", b"1", &sealed[..5]).is_err(),
        "too short"
    );
    let other = Sealer::create_key_file(&dir.path().join("k2")).expect("key");
    assert!(
        other.open(b"persons", b"1", &sealed).is_err(),
        "another key"
    );
    std::fs::write(dir.path().join("bad"), "not hex").expect("write");
    assert!(Sealer::from_key_file(&dir.path().join("bad")).is_err());
}

#[test]
fn cancellation_rotates_the_gallery_key_so_lingering_copies_do_not_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("g");
    let key_file = default_key_file(&db);
    let store = GalleryStore::open(&db, &key_file).expect("open");
    let a = store.add_person(new_person()).expect("add").id;
    let b = store.add_person(new_person()).expect("add").id;
    store.add_template(b, &template()).expect("template");
    // What a copy of the disk taken before the cancellation holds: a's sealed data key, and
    // the gallery key that opens it.
    let slot = a.0.to_be_bytes();
    let lingering = store.keys.get(slot).expect("get").expect("a's key");
    let old_key = std::fs::read_to_string(&key_file).expect("key file");
    assert!(
        Sealer::from_key_file(&key_file)
            .expect("key")
            .open(b"person_keys", &slot, &lingering)
            .is_ok()
    );

    store.cancel(a).expect("cancel");
    assert_ne!(
        std::fs::read_to_string(&key_file).expect("key file"),
        old_key
    );
    assert!(
        Sealer::from_key_file(&key_file)
            .expect("key")
            .open(b"person_keys", &slot, &lingering)
            .is_err(),
        "the cancelled person's key still opens under the current gallery key"
    );
    // Everyone else is intact, now and after reopening.
    assert_eq!(store.templates(b).expect("b"), vec![template()]);
    drop(store);
    let store = GalleryStore::open(&db, &key_file).expect("reopen");
    assert_eq!(store.person(b).expect("b").name, "CHAN Tai Man");
}

#[test]
fn an_interrupted_rotation_is_finished_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("g");
    let key_file = default_key_file(&db);
    let store = GalleryStore::open(&db, &key_file).expect("open");
    let a = store.add_person(new_person()).expect("add").id;
    let b = store.add_person(new_person()).expect("add").id;
    // A crash after the next key was written and one value re-sealed under it.
    let next_file = super::next_key_file(&key_file);
    let next = Sealer::create_key_file(&next_file).expect("next key");
    let slot = a.0.to_be_bytes();
    let plain = store
        .sealer()
        .open(
            b"person_keys",
            &slot,
            &store.keys.get(slot).unwrap().unwrap(),
        )
        .expect("open");
    store
        .keys
        .insert(slot, next.seal(b"person_keys", &slot, &plain).unwrap())
        .unwrap();
    store.db.flush().unwrap();
    drop(store);

    let store = GalleryStore::open(&db, &key_file).expect("reopen finishes the rotation");
    assert!(!next_file.exists());
    assert_eq!(store.person(a).expect("a").id, a);
    assert_eq!(store.person(b).expect("b").id, b);
    let current = Sealer::from_key_file(&key_file).expect("key");
    for id in [a, b] {
        let slot = id.0.to_be_bytes();
        assert!(
            current
                .open(
                    b"person_keys",
                    &slot,
                    &store.keys.get(slot).unwrap().unwrap()
                )
                .is_ok()
        );
    }
}
