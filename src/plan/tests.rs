use super::*;

fn topic(json: serde_json::Value) -> TopicConfig {
    serde_json::from_value(json).unwrap()
}

fn state(partition: i32, low: i64, high: i64) -> PartitionState {
    PartitionState {
        partition,
        low,
        high,
        recorded: None,
        committed: None,
    }
}

fn ranges(plans: &[PartitionPlan]) -> Vec<(i32, i64, i64)> {
    plans
        .iter()
        .map(|p| (p.partition, p.start, p.end))
        .collect()
}

#[test]
fn start_prefers_progress_then_committed_then_earliest() {
    let t = topic(serde_json::json!({"topic": "t"}));
    let states = [
        PartitionState {
            recorded: Some(7),
            committed: Some(3),
            ..state(0, 0, 10)
        },
        PartitionState {
            committed: Some(3),
            ..state(1, 0, 10)
        },
        state(2, 2, 10),
    ];
    let plans = compute(&t, &states).unwrap();
    assert_eq!(ranges(&plans), [(0, 7, 10), (1, 3, 10), (2, 2, 10)]);
    let sources: Vec<_> = plans.iter().map(|p| p.source).collect();
    assert_eq!(
        sources,
        [
            StartSource::Progress,
            StartSource::Committed,
            StartSource::Earliest
        ]
    );
}

#[test]
fn reset_and_starting_offsets_override_progress() {
    let states = [
        PartitionState {
            recorded: Some(7),
            ..state(0, 1, 10)
        },
        state(1, 0, 10),
    ];
    let reset = topic(serde_json::json!({"topic": "t", "reset_offsets": true}));
    assert_eq!(
        ranges(&compute(&reset, &states).unwrap()),
        [(0, 1, 10), (1, 0, 10)]
    );
    let starts = topic(serde_json::json!({"topic": "t", "starting_offsets": {"1": 4}}));
    assert_eq!(ranges(&compute(&starts, &states).unwrap()), [(1, 4, 10)]);
}

#[test]
fn cap_is_split_evenly_and_unused_shares_move_on() {
    let t = topic(serde_json::json!({"topic": "t", "num_messages": 10}));
    let states = [state(0, 0, 2), state(1, 0, 100), state(2, 0, 100)];
    // Partition 0 has only 2: the other 8 split 4 and 4.
    assert_eq!(
        ranges(&compute(&t, &states).unwrap()),
        [(0, 0, 2), (1, 0, 4), (2, 0, 4)]
    );
    let t = topic(serde_json::json!({"topic": "t", "num_messages": 1000}));
    assert_eq!(
        ranges(&compute(&t, &states).unwrap()),
        [(0, 0, 2), (1, 0, 100), (2, 0, 100)]
    );
}

#[test]
fn deleted_offsets_fail_by_default_and_are_skipped_and_reported_on_request() {
    let states = [PartitionState {
        recorded: Some(5),
        ..state(0, 20, 30)
    }];
    let t = topic(serde_json::json!({"topic": "t"}));
    let e = compute(&t, &states).unwrap_err().to_string();
    assert!(
        e.contains("topic t partition 0: offsets 5..20 were deleted by retention"),
        "{e}"
    );
    assert!(e.contains("\"fail_on_data_loss\": false"), "{e}");
    let t = topic(serde_json::json!({"topic": "t", "fail_on_data_loss": false}));
    let plans = compute(&t, &states).unwrap();
    assert_eq!(ranges(&plans), [(0, 20, 30)]);
    assert_eq!(plans[0].lost, Some((5, 20)));
}

#[test]
fn a_start_beyond_the_end_is_an_error_that_says_what_to_do() {
    let states = [PartitionState {
        recorded: Some(50),
        ..state(0, 0, 30)
    }];
    let e = compute(&topic(serde_json::json!({"topic": "t"})), &states)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "start offset 50 (from recorded progress) is beyond the end of the partition (30)"
        ),
        "{e}"
    );
    assert!(e.contains("reset_offsets"), "{e}");
}

#[test]
fn starting_offsets_for_a_missing_partition_is_an_error() {
    let t = topic(serde_json::json!({"topic": "t", "starting_offsets": {"5": 0}}));
    let e = compute(&t, &[state(0, 0, 1)]).unwrap_err().to_string();
    assert!(
        e.contains("names partition 5, but the topic has partitions 0..1"),
        "{e}"
    );
}
