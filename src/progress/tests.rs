//! The claim protocol of continuous members, with two members on one local folder.

use super::*;
use crate::write::{SealedFile, file_path};

struct Store {
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
    sink: Arc<Sink>,
}

fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sink = Arc::new(Sink::local(dir.path(), rt.handle().clone()).unwrap());
    Store {
        _dir: dir,
        _rt: rt,
        sink,
    }
}

fn member(store: &Store) -> Progress {
    let mut progress = Progress::load(store.sink.clone(), "g", "t").unwrap();
    progress.claim_segments();
    progress
}

/// A segment of partition 0 from `start` to `next`, in one file named by its start.
fn segment(store: &Store, start: i64, next: i64, body: &str) -> Sealed {
    segment_of(store, 0, start, next, body)
}

/// A segment of `partition` from `start` to `next`, in one file named by its start.
fn segment_of(store: &Store, partition: i32, start: i64, next: i64, body: &str) -> Sealed {
    let path = file_path("t", "t", partition, start, "");
    Sealed {
        partition,
        start,
        next_offset: next,
        files: vec![SealedFile::of_bytes(
            &store.sink,
            path,
            (next - start) as u64,
            body.as_bytes(),
        )],
    }
}

fn body(partition: i32, start: i64, next: i64) -> String {
    format!("{partition}: {start}-{next}")
}

/// Segments of distinct partitions share one save; a second segment of a partition starts
/// a new group, so at most one visible segment per partition is ever ahead of the record.
#[test]
fn a_group_of_segments_is_recorded_with_one_save_per_partition_round() {
    let store = store();
    let mut progress = Progress::load(store.sink.clone(), "g", "t").unwrap();
    let committed = progress
        .commit_all(
            [(0, 0, 10), (1, 0, 5), (2, 0, 7), (0, 10, 20), (1, 5, 9)]
                .map(|(p, start, next)| segment_of(&store, p, start, next, &body(p, start, next)))
                .into(),
        )
        .unwrap();
    assert_eq!(progress.saves, 2);
    let covered: Vec<(i32, i64, usize)> = committed
        .iter()
        .map(|c| (c.partition, c.next_offset, c.files.len()))
        .collect();
    assert_eq!(
        covered,
        vec![(0, 10, 1), (1, 5, 1), (2, 7, 1), (0, 20, 1), (1, 9, 1)]
    );
    let stored = Progress::load(store.sink.clone(), "g", "t").unwrap();
    assert_eq!(stored.offsets(), BTreeMap::from([(0, 20), (1, 9), (2, 7)]));
    for (partition, start, next) in [(0, 0, 10), (1, 0, 5), (2, 0, 7), (0, 10, 20), (1, 5, 9)] {
        let bytes = store
            .sink
            .get(&file_path("t", "t", partition, start, ""))
            .unwrap()
            .unwrap();
        assert_eq!(bytes, body(partition, start, next).as_bytes());
    }
    assert!(progress.commit_all(Vec::new()).unwrap().is_empty());
    assert_eq!(progress.saves, 2);
}

fn file(store: &Store, start: i64) -> Option<String> {
    let bytes = store.sink.get(&file_path("t", "t", 0, start, "")).unwrap();
    bytes.map(|b| String::from_utf8(b.to_vec()).unwrap())
}

#[test]
fn a_zombie_refused_at_its_claim_leaves_the_new_owners_file_of_the_same_name_alone() {
    let store = store();
    let mut zombie = member(&store);
    zombie.recover(&[0]).unwrap();
    zombie
        .commit(segment(&store, 0, 10, "zombie 0-10"))
        .unwrap();
    // The zombie stalls; the new owner starts where progress stands and commits [10, 20).
    let mut owner = member(&store);
    owner.recover(&[0]).unwrap();
    assert_eq!(owner.offsets()[&0], 10);
    owner
        .commit(segment(&store, 10, 20, "owner 10-20"))
        .unwrap();
    // The zombie wakes with [10, 25) open: its claim is refused...
    let refused = zombie.commit(segment(&store, 10, 25, "zombie 10-25"));
    assert!(
        matches!(refused, Err(ProgressError::Conflict { partition: 0, .. })),
        "{:?}",
        refused.err()
    );
    // ...and its restart, which clears what it had claimed, must not take the owner's file.
    let recovered = zombie.recover(&[0]);
    assert_eq!(
        file(&store, 10).as_deref(),
        Some("owner 10-20"),
        "{recovered:?}"
    );
    recovered.unwrap();
    assert_eq!(file(&store, 10).as_deref(), Some("owner 10-20"));
    assert_eq!(zombie.offsets()[&0], 20);
    assert!(zombie.state().partitions[&0].pending.is_empty());
}

/// Stores a record whose partition 0 is at 10 with the segment from 10 claimed by `owner`
/// for `seconds` more (negative: ran out).
fn claimed(store: &Store, owner: &str, seconds: i64) {
    let until = chrono::Utc::now() + chrono::Duration::seconds(seconds);
    let pending = file_path("t", "t", 0, 10, "").to_string();
    store
        .sink
        .put(&pending.as_str().into(), "half committed".into())
        .unwrap();
    let record = TopicProgress {
        topic: "t".into(),
        group_id: "g".into(),
        partitions: BTreeMap::from([(
            0,
            PartitionProgress {
                next_offset: 10,
                pending: vec![pending],
                pending_until: Some(until.to_rfc3339()),
                pending_owner: Some(owner.into()),
                ..PartitionProgress::default()
            },
        )]),
    };
    let json = serde_json::to_vec(&record).unwrap();
    store
        .sink
        .put(&progress_path("g", "t"), json.into())
        .unwrap();
}

#[test]
fn a_member_never_claims_over_another_members_live_claim() {
    let store = store();
    let mut owner = member(&store);
    owner.recover(&[0]).unwrap();
    // A member that lost the partition claims a segment after the new owner started.
    claimed(&store, "the previous owner", 60);
    // The store refuses the owner's claim (the record changed under it)...
    let refused = owner.commit(segment(&store, 10, 20, "owner 10-20"));
    assert!(
        matches!(refused, Err(ProgressError::Conflict { partition: 0, .. })),
        "{:?}",
        refused.err()
    );
    assert_eq!(file(&store, 10).as_deref(), Some("half committed"));
    // ...its restart leaves the live claim's files and sees the claim to wait for...
    owner.recover(&[0]).unwrap();
    assert!(owner.claimed_until(0).is_some());
    assert_eq!(file(&store, 10).as_deref(), Some("half committed"));
    // ...and a member that knows of the claim does not claim over it.
    let refused = owner.commit(segment(&store, 10, 20, "owner 10-20"));
    assert!(
        matches!(refused, Err(ProgressError::Claimed { partition: 0, .. })),
        "{:?}",
        refused.err()
    );
    assert_eq!(file(&store, 10).as_deref(), Some("half committed"));
}

#[test]
fn a_member_clears_its_own_live_claim_at_once_and_takes_over_an_expired_one() {
    let store = store();
    let mut member_a = member(&store);
    claimed(&store, &member_a.owner.clone(), 60);
    member_a.recover(&[0]).unwrap();
    assert_eq!(member_a.claimed_until(0), None);
    assert_eq!(file(&store, 10), None);
    assert!(member_a.state().partitions[&0].pending.is_empty());

    claimed(&store, "a member gone for good", -1);
    let mut member_b = member(&store);
    assert_eq!(member_b.claimed_until(0), None);
    member_b.recover(&[0]).unwrap();
    assert_eq!(file(&store, 10), None);
    let stored = Progress::load(store.sink.clone(), "g", "t").unwrap();
    assert_eq!(stored.state().partitions[&0].pending, Vec::<String>::new());
    assert_eq!(stored.offsets()[&0], 10);
    // The recovered partition is the member's to commit.
    member_b.commit(segment(&store, 10, 20, "b 10-20")).unwrap();
    assert_eq!(file(&store, 10).as_deref(), Some("b 10-20"));
}
