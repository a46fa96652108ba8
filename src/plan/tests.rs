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
        at_time: BTreeMap::new(),
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
    let plans = compute(&t, &states, Request::default()).unwrap();
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
        ranges(&compute(&reset, &states, Request::default()).unwrap()),
        [(0, 1, 10), (1, 0, 10)]
    );
    let starts = topic(serde_json::json!({"topic": "t", "starting_offsets": {"1": 4}}));
    assert_eq!(
        ranges(&compute(&starts, &states, Request::default()).unwrap()),
        [(1, 4, 10)]
    );
}

#[test]
fn cap_is_split_evenly_and_unused_shares_move_on() {
    let t = topic(serde_json::json!({"topic": "t", "num_messages": 10}));
    let states = [state(0, 0, 2), state(1, 0, 100), state(2, 0, 100)];
    // Partition 0 has only 2: the other 8 split 4 and 4.
    assert_eq!(
        ranges(&compute(&t, &states, Request::default()).unwrap()),
        [(0, 0, 2), (1, 0, 4), (2, 0, 4)]
    );
    let t = topic(serde_json::json!({"topic": "t", "num_messages": 1000}));
    assert_eq!(
        ranges(&compute(&t, &states, Request::default()).unwrap()),
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
    let e = compute(&t, &states, Request::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("topic t partition 0: offsets 5..20 were deleted by retention"),
        "{e}"
    );
    assert!(e.contains("\"fail_on_data_loss\": false"), "{e}");
    let t = topic(serde_json::json!({"topic": "t", "fail_on_data_loss": false}));
    let plans = compute(&t, &states, Request::default()).unwrap();
    assert_eq!(ranges(&plans), [(0, 20, 30)]);
    assert_eq!(plans[0].lost, Some((5, 20)));
}

#[test]
fn a_start_beyond_the_end_is_an_error_that_says_what_to_do() {
    let states = [PartitionState {
        recorded: Some(50),
        ..state(0, 0, 30)
    }];
    let e = compute(
        &topic(serde_json::json!({"topic": "t"})),
        &states,
        Request::default(),
    )
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
    let e = compute(&t, &[state(0, 0, 1)], Request::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("names partition 5, but the topic has partitions 0..1"),
        "{e}"
    );
}

fn backfill(from: &[&str], to: &[&str]) -> Backfill {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Backfill {
        from: bounds::Bound::parse(&strings(from), "--from").unwrap(),
        to: bounds::Bound::parse(&strings(to), "--to").unwrap(),
        record_progress: false,
    }
}

fn plan_backfill(
    t: &TopicConfig,
    states: &[PartitionState],
    b: &Backfill,
) -> Result<Vec<(i32, i64, i64)>, PlanError> {
    let request = Request {
        backfill: Some(b),
        shard: None,
    };
    compute(t, states, request).map(|p| ranges(&p))
}

#[test]
fn backfill_bounds_resolve_per_partition() {
    // num_messages does not cap a backfill: its bounds are its range.
    let t = topic(serde_json::json!({"topic": "t", "num_messages": 1}));
    let mut times = BTreeMap::new();
    times.insert(5_000, Some(40));
    times.insert(9_000, None);
    let states = [
        PartitionState {
            recorded: Some(30),
            at_time: times.clone(),
            ..state(0, 10, 100)
        },
        PartitionState {
            at_time: times,
            ..state(1, 0, 50)
        },
    ];
    let b = backfill(&["beginning", "1=-20"], &["e@5000"]);
    assert_eq!(
        plan_backfill(&t, &states, &b).unwrap(),
        [(0, 10, 40), (1, 30, 40)]
    );
    // No record at or after the time: the end of the partition.
    let b = backfill(&["s@9000"], &[]);
    assert_eq!(
        plan_backfill(&t, &states, &b).unwrap(),
        [(0, 100, 100), (1, 50, 50)]
    );
    // Only the named partition; `stored` is the recorded progress; an end past the high
    // watermark is lowered to it.
    let b = backfill(&["0=stored"], &["0=500"]);
    assert_eq!(plan_backfill(&t, &states, &b).unwrap(), [(0, 30, 100)]);
    // --to alone keeps the regular start.
    let b = backfill(&[], &["-10"]);
    assert_eq!(
        plan_backfill(&t, &states, &b).unwrap(),
        [(0, 30, 90), (1, 0, 40)]
    );
}

#[test]
fn backfill_bounds_fail_with_the_partition_and_the_fix() {
    let t = topic(serde_json::json!({"topic": "t"}));
    let states = [state(0, 10, 100)];
    let e = plan_backfill(&t, &states, &backfill(&["50"], &["20"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("partition 0") && e.contains("before the start 50"),
        "{e}"
    );
    let e = plan_backfill(&t, &states, &backfill(&["500"], &[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("past the end of the partition (100)"), "{e}");
    let e = plan_backfill(&t, &states, &backfill(&["3=5"], &[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("partition 3"), "{e}");
    let e = plan_backfill(&t, &states, &backfill(&["2"], &[]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("offsets 2..10 were deleted") && e.contains("--allow-data-loss"),
        "{e}"
    );
    let lenient = topic(serde_json::json!({"topic": "t", "fail_on_data_loss": false}));
    let request = Request {
        backfill: Some(&backfill(&["2"], &["60"])),
        shard: None,
    };
    let plans = compute(&lenient, &states, request).unwrap();
    assert_eq!(ranges(&plans), [(0, 10, 60)]);
    assert_eq!(plans[0].lost, Some((2, 10)));
}

#[test]
fn a_shard_plans_only_its_partitions() {
    let t = topic(serde_json::json!({"topic": "t"}));
    let states: Vec<_> = (0..6).map(|p| state(p, 0, 10)).collect();
    let mut seen = Vec::new();
    for index in 0..2 {
        let request = Request {
            backfill: None,
            shard: Some(bounds::Shard { index, count: 2 }),
        };
        let plans = compute(&t, &states, request).unwrap();
        assert!(!plans.is_empty() && plans.len() < 6);
        seen.extend(plans.iter().map(|p| p.partition));
    }
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
}
