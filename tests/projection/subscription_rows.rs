//! The subscription read model on SQLite, PostgreSQL and MariaDB (through the shared
//! conformance harness, `projection_support`): a subscription's row for every transition of
//! its three streams (each state its own columns), the index streams making no rows, no
//! address in any row, the removal selection, and a rebuild and `verify` that find the same
//! rows.

use crate::projection_support;

use ledger::projection::Projector;
use ledger::proto::events as ev;
use projection_support::*;

read_model_conformance!(
    every_subscription_transition_changes_only_its_own_columns,
    no_subscription_row_holds_the_address,
    subscription_removal_candidates_are_exported_or_past_the_grace_period,
    a_rebuild_and_verify_find_the_same_subscription_rows,
);

/// One step of a subscription's history.
enum Step {
    /// Created (with its index entries) from a banner.
    Created,
    Confirmed,
    Exported,
    /// Removed by `rule`.
    Removed(ev::ScrubRule),
}

async fn append(env: &Env, id: u64, step: Step) -> u64 {
    let stream = |category: &str| format!("{category}-{id}");
    match step {
        Step::Created => {
            let code = format!("{id:032x}");
            env.append(
                &format!("subscription_code-{code}"),
                ev::SubscriptionCodeIssued {
                    subscription_id: id,
                },
            )
            .await;
            env.append(
                &format!("subscription_email-{id:064x}"),
                ev::SubscriptionEmailUsed {
                    subscription_id: id,
                    subscribed_at: Some(ts(base_time())),
                },
            )
            .await;
            env.append(
                &stream("subscription"),
                ev::SubscriptionCreated {
                    subscription_id: id,
                    subscriber: Some(ev::SubscriberData {
                        email: "kasimir@example.org".into(),
                    }),
                    tracking: "spring/banner".into(),
                    source: "form".into(),
                    created_at: Some(ts(base_time())),
                    confirmation_code: code,
                    ..Default::default()
                },
            )
            .await
        }
        Step::Confirmed => {
            env.append(
                &stream("subscription"),
                ev::SubscriptionConfirmed {
                    confirmed_at: Some(ts(base_time())),
                },
            )
            .await
        }
        Step::Exported => {
            env.append(
                &stream("subscription_export"),
                ev::SubscriptionExported {
                    batch_id: "s-1".into(),
                    exported_at: Some(ts(base_time())),
                },
            )
            .await
        }
        Step::Removed(rule) => {
            env.append(
                &stream("subscription_scrub"),
                ev::PersonalDataScrubbed {
                    rule: rule as i32,
                    scrubbed_at: Some(ts(base_time())),
                },
            )
            .await
        }
    }
}

/// The independent state columns of a subscription, in this order.
const STATES: [&str; 4] = ["status", "is_exported", "is_removed", "removal_rule"];

async fn every_subscription_transition_changes_only_its_own_columns(env: Env) {
    use Step::*;
    let rm = env.read_model().await;
    let p = Projector::with_config(env.log(), rm.clone(), config(3));
    let steps = [
        (Created, "new false false "),
        (Confirmed, "confirmed false false "),
        (Exported, "confirmed true false "),
        (
            Removed(ev::ScrubRule::Exported),
            "confirmed true true exported",
        ),
    ];
    for (step, states) in steps {
        append(&env, 1, step).await;
        p.run_once().await.unwrap();
        let r = row(&rm, "subscription", 1).await;
        let expected: Vec<(&str, &str)> = STATES.into_iter().zip(states.split(' ')).collect();
        check(&r, &expected);
        check(&r, &[("tracking", "spring/banner"), ("source", "form")]);
    }
    let r = row(&rm, "subscription", 1).await;
    check(&r, &[("export_batch", "s-1")]);
    // The index streams make no row of their own anywhere.
    let dump = rm.dump().await.unwrap();
    assert_eq!(dump["subscription"].len(), 1);
}

async fn no_subscription_row_holds_the_address(env: Env) {
    use Step::*;
    for step in [Created, Confirmed] {
        append(&env, 1, step).await;
    }
    append(&env, 2, Created).await;
    append(&env, 2, Removed(ev::ScrubRule::ForcedRemoval)).await;
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(100))
        .run_once()
        .await
        .unwrap();
    check(
        &row(&rm, "subscription", 2).await,
        &[
            ("is_removed", "true"),
            ("removal_rule", "forced_removal"),
            ("status", "new"),
        ],
    );
    let dump = format!("{:?}", rm.dump().await.unwrap());
    assert!(
        !dump.contains("kasimir"),
        "the address reached the read model"
    );
}

/// The removal selection (`subscription_scrub_candidates.sql`): an exported subscription at
/// once; any other not removed one once made before the grace cutoff; never a removed one.
async fn subscription_removal_candidates_are_exported_or_past_the_grace_period(env: Env) {
    use Step::*;
    let histories = [
        vec![Created, Exported],
        vec![Created, Confirmed],
        vec![Created],
        vec![Created, Exported, Removed(ev::ScrubRule::Exported)],
        vec![Created, Removed(ev::ScrubRule::ForcedRemoval)],
    ];
    for (id, steps) in (1u64..).zip(histories) {
        for step in steps {
            append(&env, id, step).await;
        }
    }
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(100))
        .run_once()
        .await
        .unwrap();
    let found = |cutoff| {
        let rm = rm.clone();
        async move {
            let mut found: Vec<(u64, String)> = rm
                .subscription_scrub_candidates(cutoff, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.subscription_id, c.rule))
                .collect();
            found.sort();
            found
        }
    };
    let inside = base_time() - chrono::Duration::seconds(1);
    assert_eq!(found(inside).await, vec![(1, "exported".to_owned())]);
    assert_eq!(
        found(base_time()).await,
        vec![
            (1, "exported".to_owned()),
            (2, "after_grace_period".to_owned()),
            (3, "after_grace_period".to_owned()),
        ]
    );
}

async fn a_rebuild_and_verify_find_the_same_subscription_rows(env: Env) {
    use Step::*;
    for id in 1..=6u64 {
        append(&env, id, Created).await;
        if id % 2 == 0 {
            append(&env, id, Confirmed).await;
        }
        if id % 3 == 0 {
            append(&env, id, Exported).await;
        }
        if id == 6 {
            append(&env, id, Removed(ev::ScrubRule::Exported)).await;
        }
    }
    assert_rebuild_and_verify_agree(&env, "subscription", 6).await;
}
