import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The checkpoint, journal and lock in S3 (`--state s3://…`), against the real aws CLI and the
/// emulator's S3, which honours If-Match and If-None-Match. The sqs step keeps these cheap.
final class S3StateTests: XCTestCase {
  static let bucket = "runbook-state"

  override func setUp() async throws { try Emulator.reset() }

  /// A workspace whose state lives in `s3://runbook-state/PREFIX` (the bucket is created here).
  func s3Workspace(
    name: String = #function, queues: [String]? = ["events-queue"],
    configure: @escaping (inout [String: Any]) -> Void = { _ in }
  ) async throws -> Workspace {
    let workspace = try Workspace(name: name) { config in
      if let queues {
        config["sqs"] = [
          "queues": queues,
          "deadLetter": ["queue": queues[0] + "-dlq", "source": queues[0], "maxReceiveCount": 5],
        ]
      }
      configure(&config)
    }
    _ = try await workspace.aws([
      "s3api", "create-bucket", "--bucket", Self.bucket, "--create-bucket-configuration",
      "LocationConstraint=ap-northeast-2",
    ])
    return workspace
  }

  /// The state location every run of a test uses: the bucket alone (the prefix defaults to
  /// `runbook/<deployment>`).
  let state = ["--state", "s3://\(S3StateTests.bucket)"]

  /// An object's bytes (nil when it does not exist).
  func object(_ workspace: Workspace, _ key: String) async throws -> Data? {
    let target = workspace.directory.appendingPathComponent("object-\(UUID().uuidString.prefix(8))")
      .path
    do {
      _ = try await workspace.aws([
        "s3api", "get-object", "--bucket", Self.bucket, "--key", key, target,
      ])
    } catch let error as HarnessError where "\(error)".contains("NoSuchKey") {
      return nil
    }
    return FileManager.default.contents(atPath: target)
  }

  func keys(_ workspace: Workspace, prefix: String) async throws -> [String] {
    let listed = try await workspace.aws([
      "s3api", "list-objects-v2", "--bucket", Self.bucket, "--prefix", prefix,
    ])
    return ((listed as? [String: Any])?["Contents"] as? [[String: Any]] ?? []).compactMap {
      $0["Key"] as? String
    }
  }

  func s3Checkpoint(_ workspace: Workspace, deployment: String = "unisync") async throws
    -> Checkpoint
  {
    let stored = try await object(workspace, "runbook/\(deployment)/state.json")
    let data = try XCTUnwrap(stored, "no state.json in S3")
    return try JSONDecoder().decode(Checkpoint.self, from: data)
  }

  /// A full run of the sqs step with S3 state leaves the same queues and exports as a run with
  /// local state, `state.json` has the local file's format, and a rerun makes no write call at
  /// all (state included).
  func testRunWithS3StateMatchesLocalStateAndRerunWritesNothing() async throws {
    let workspace = try await s3Workspace()
    let first = try await workspace.run(state + ["run", "sqs", "--yes"])
    XCTAssertEqual(first.status, 0, first.summary)
    let s3Queues = try await sqsInventory(workspace)
    let checkpoint = try await s3Checkpoint(workspace)
    XCTAssertEqual(checkpoint.deployment, "unisync")
    XCTAssertEqual(checkpoint.account, "123456789012")
    // Two queues: a create and a derived ARN each, and the listing of the queues that exist.
    XCTAssertEqual(checkpoint.actions.count, 5)
    // The same bytes a local state.json would hold for this checkpoint.
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let bytes = try await object(workspace, "runbook/unisync/state.json")
    XCTAssertEqual(bytes, try encoder.encode(checkpoint) + Data("\n".utf8))
    let lock = try await object(workspace, "runbook/unisync/lock")
    XCTAssertNil(lock, "the lock is released at the end")
    XCTAssertNil(workspace.stateBytes, "nothing of the state is kept locally")
    let journal = try await keys(
      workspace, prefix: "runbook/unisync/journal/\(checkpoint.lineage)/")
    XCTAssertEqual(
      journal.filter { $0.contains(".intent.sqs+queue-") }.count, 2, "one intent per create-queue")
    XCTAssertEqual(
      journal.filter { $0.contains(".result.sqs+queue-") }.count, 2, "one result per create-queue")

    let rerun = try await workspace.runLogged(state + ["run", "sqs", "--yes"])
    XCTAssertEqual(rerun.run.status, 0, rerun.run.summary)
    XCTAssertTrue(rerun.run.stdout.contains("nothing to do"), rerun.run.stdout)
    XCTAssertEqual(rerun.calls.filter { $0["write"] as? Bool == true }.count, 0, "\(rerun.calls)")
    let serial = try await s3Checkpoint(workspace).serial
    XCTAssertEqual(serial, checkpoint.serial, "the rerun wrote no new version")

    // The same run with local state, in a fresh emulator.
    try Emulator.reset()
    let local = try await workspace.run(["run", "sqs", "--yes"])
    XCTAssertEqual(local.status, 0, local.summary)
    let localQueues = try await sqsInventory(workspace)
    XCTAssertEqual(s3Queues.map(\.name), ["events-queue", "events-queue-dlq"])
    XCTAssertEqual(s3Queues.map(\.name), localQueues.map(\.name))
    XCTAssertEqual(s3Queues.map(\.arn), localQueues.map(\.arn))
    XCTAssertEqual(
      s3Queues.map { $0.redrivePolicy?["deadLetterTargetArn"] as? String },
      localQueues.map { $0.redrivePolicy?["deadLetterTargetArn"] as? String })
    let localCheckpoint = try workspace.checkpoint()
    XCTAssertEqual(localCheckpoint.exports, checkpoint.exports)
    XCTAssertEqual(
      localCheckpoint.actions.mapValues { [$0.status.rawValue, $0.outcome?.rawValue, $0.value] },
      checkpoint.actions.mapValues { [$0.status.rawValue, $0.outcome?.rawValue, $0.value] })
  }

  /// Two runs started at once: one takes the lock, the other exits 3 naming it. The holder is
  /// killed mid-run: its lease expires, a later run reports it with the holder, `unlock` (asked,
  /// then typed) removes it, and the runs after it resume through a few more kill points to
  /// exactly one of each queue.
  func testConcurrentRunsKilledHolderUnlockAndCrashChain() async throws {
    let workspace = try await s3Workspace()
    let temporary = try workspace.privateTemporaryDirectory()
    // The winner is killed right after its 8th write: lock, the history's start record, account
    // pin, then the first queue's intent, create-queue, result and checkpoint, and the checkpoint
    // of its ARN read.
    let counters = (0..<2).map { workspace.directory.appendingPathComponent("counter-\($0)").path }
    let runs = try counters.map { counter in
      try RunningTool(
        workspace, state + ["run", "sqs", "--yes", "--jobs", "1"],
        environment: [
          "RUNBOOK_CRASH_AT": "8", "RUNBOOK_CRASH_COUNTER": counter,
          "RUNBOOK_LOCK_LEASE_SECONDS": "3",
        ])
    }
    let results = try await [runs[0].finish(), runs[1].finish()]
    let losers = results.indices.filter { results[$0].status == ExitStatus.locked }
    XCTAssertEqual(losers.count, 1, "exactly one run exits 3: \(results)")
    let loser = try XCTUnwrap(losers.first)
    let winner = 1 - loser
    XCTAssertEqual(
      results[winner].status, SIGKILL,
      "the winner is killed holding the lock: \(results[winner].text)")
    XCTAssertTrue(runs[winner].signaled)
    XCTAssertTrue(
      results[loser].text.contains("another run holds the lock (pid \(runs[winner].pid)"),
      results[loser].text)

    // The lease (3 s) runs out; a later run reports the holder and the expiry, and changes nothing.
    // Waited for by the lock's own expiry, read again after each wait: a renewal the dead run
    // had in flight may still have landed after the kill.
    while true {
      let held = try await object(workspace, "runbook/unisync/lock")
      let record = try JSONDecoder().decode(LockRecord.self, from: try XCTUnwrap(held))
      if record.expired() { break }
      let expiry = try XCTUnwrap(record.expiresAt.flatMap(parseTimestamp), "\(record)")
      try await Task.sleep(nanoseconds: UInt64(max(0.05, expiry.timeIntervalSinceNow + 0.05) * 1e9))
    }
    let before = try await object(workspace, "runbook/unisync/state.json")
    let blocked = try await workspace.run(state + ["run", "sqs", "--yes"])
    XCTAssertEqual(blocked.status, ExitStatus.locked, blocked.summary)
    XCTAssertTrue(blocked.stderr.contains("pid \(runs[winner].pid)"), blocked.stderr)
    XCTAssertTrue(blocked.stderr.contains("its lease expired at"), blocked.stderr)
    XCTAssertTrue(blocked.stderr.contains("runbook unlock"), blocked.stderr)
    let after = try await object(workspace, "runbook/unisync/state.json")
    XCTAssertEqual(after, before)

    // Without a terminal to type the deployment name in, unlock needs --yes --force.
    let refused = try await workspace.run(state + ["unlock", "--yes"])
    XCTAssertEqual(refused.status, ExitStatus.usage, refused.summary)
    let kept = try await object(workspace, "runbook/unisync/lock")
    XCTAssertNotNil(kept)
    try await unlock(workspace)

    // Two more kill points, each followed by unlock: lock, history, intent, create-queue (killed
    // before its result is journaled); then lock, history, the lookup's recovered result (killed
    // before the checkpoint).
    for point in ["4", "3"] {
      let counter = workspace.directory.appendingPathComponent("counter-\(point)").path
      try Data().write(to: URL(fileURLWithPath: counter))
      let killed = try await workspace.run(
        state + ["run", "sqs", "--yes", "--jobs", "1"],
        environment: ["RUNBOOK_CRASH_AT": point, "RUNBOOK_CRASH_COUNTER": counter])
      XCTAssertTrue(killed.signaled, "kill point \(point): \(killed.summary)")
      try await unlock(workspace)
    }
    let last = try await workspace.run(state + ["run", "sqs", "--yes"])
    XCTAssertEqual(last.status, 0, last.summary)
    let queues = try await sqsInventory(workspace)
    XCTAssertEqual(queues.map(\.name), ["events-queue", "events-queue-dlq"], "exactly one of each")
    let checkpoint = try await s3Checkpoint(workspace)
    for queue in queues {
      let suffix = queue.name.uppercased().replacingOccurrences(of: "-", with: "_")
      XCTAssertEqual(checkpoint.exports["QUEUE_URL_\(suffix)"], queue.url, queue.name)
      XCTAssertEqual(checkpoint.exports["QUEUE_ARN_\(suffix)"], queue.arn, queue.name)
    }
    XCTAssertEqual(checkpoint.actions.values.filter { $0.status == .done }.count, 5)
    let lock = try await object(workspace, "runbook/unisync/lock")
    XCTAssertNil(lock)
    // Runs killed during a put-object left its body (a checkpoint, a journal line) in a private
    // folder of the local state folder, which the next run removed: nothing in TMPDIR.
    XCTAssertEqual(
      (try FileManager.default.contentsOfDirectory(atPath: temporary)).filter {
        $0.hasPrefix("runbook-")
      }, [], "what killed runs left in TMPDIR")
  }

  func unlock(_ workspace: Workspace, file: StaticString = #filePath, line: UInt = #line)
    async throws
  {
    let unlocked = try await workspace.run(state + ["unlock", "--yes", "--force"])
    XCTAssertEqual(unlocked.status, 0, unlocked.summary, file: file, line: line)
    XCTAssertTrue(
      unlocked.stdout.contains("unlocked s3://runbook-state/runbook/unisync"), unlocked.stdout,
      file: file, line: line)
    let lock = try await object(workspace, "runbook/unisync/lock")
    XCTAssertNil(lock, file: file, line: line)
  }

  /// Another version of state.json written between the run's read and its write: the run's write
  /// fails its If-Match, it exits 3 naming PreconditionFailed, and the other version stays.
  func testStateChangedBehindTheRunsBackIsNeverOverwritten() async throws {
    let workspace = try await s3Workspace()
    let counter = workspace.directory.appendingPathComponent("counter").path
    // Stopped right after its first create-queue (lock, history, account pin, intent, create).
    let run = try RunningTool(
      workspace, state + ["run", "sqs", "--yes", "--jobs", "1"],
      environment: [
        "RUNBOOK_CRASH_AT": "5", "RUNBOOK_CRASH_COUNTER": counter, "RUNBOOK_CRASH_SIGNAL": "STOP",
      ])
    try await run.waitUntilStopped()
    var other = try await s3Checkpoint(workspace)
    other.serial += 100
    other.exports["WRITTEN_BY"] = "someone else"
    let otherFile = workspace.directory.appendingPathComponent("other.json")
    try JSONEncoder().encode(other).write(to: otherFile)
    _ = try await workspace.aws([
      "s3api", "put-object", "--bucket", Self.bucket, "--key", "runbook/unisync/state.json",
      "--body", otherFile.path,
    ])
    kill(run.pid, SIGCONT)
    let result = try await run.finish()
    XCTAssertEqual(result.status, ExitStatus.locked, result.text)
    XCTAssertTrue(
      result.text.contains("s3://runbook-state/runbook/unisync/state.json: PreconditionFailed"),
      result.text)
    let stored = try await object(workspace, "runbook/unisync/state.json")
    XCTAssertEqual(stored, try Data(contentsOf: otherFile))
    let lock = try await object(workspace, "runbook/unisync/lock")
    XCTAssertNil(lock, "the stopped run gave its lock back")
  }

  /// Staging and production in one account and one bucket: each configuration's own names, its
  /// own prefix (`runbook/<deployment>`); destroying staging leaves production's queues and state.
  func testStagingAndProductionSideBySideAndDestroyingOneLeavesTheOther() async throws {
    let staging = try await s3Workspace(queues: ["staging-events-queue"]) {
      $0["deployment"] = "unisync-staging"
    }
    let production = try Workspace(name: "production") { config in
      config["deployment"] = "unisync-prod"
      config["sqs"] = [
        "queues": ["prod-events-queue"],
        "deadLetter": [
          "queue": "prod-events-queue-dlq", "source": "prod-events-queue", "maxReceiveCount": 5,
        ],
      ]
    }
    for workspace in [staging, production] {
      let run = try await workspace.run(state + ["run", "sqs", "--yes"])
      XCTAssertEqual(run.status, 0, run.summary)
    }
    let both = try await sqsInventory(staging).map(\.name)
    XCTAssertEqual(
      both,
      [
        "prod-events-queue", "prod-events-queue-dlq", "staging-events-queue",
        "staging-events-queue-dlq",
      ])
    let stagingState = try await s3Checkpoint(staging, deployment: "unisync-staging")
    let productionBytes = try await object(production, "runbook/unisync-prod/state.json")
    let productionState = try await s3Checkpoint(production, deployment: "unisync-prod")
    XCTAssertNotEqual(stagingState.lineage, productionState.lineage)
    let tags = try await staging.aws([
      "sqs", "list-queue-tags", "--queue-url",
      try XCTUnwrap(stagingState.exports["QUEUE_URL_STAGING_EVENTS_QUEUE"]),
    ])
    XCTAssertEqual(
      ((tags as? [String: Any])?["Tags"] as? [String: String])?["runbook:deployment"],
      "unisync-staging")

    // A configuration pointed at the other environment's state is refused before anything runs.
    let crossed = try await staging.run([
      "--state", "s3://\(Self.bucket)/runbook/unisync-prod", "run", "sqs", "--yes",
    ])
    XCTAssertEqual(crossed.status, ExitStatus.usage, crossed.summary)
    XCTAssertTrue(crossed.stderr.contains("belongs to deployment 'unisync-prod'"), crossed.stderr)

    let destroyed = try await staging.run(state + ["destroy", "sqs", "--yes", "--force"])
    XCTAssertEqual(destroyed.status, 0, destroyed.summary)
    let remaining = try await sqsInventory(staging).map(\.name)
    XCTAssertEqual(remaining, ["prod-events-queue", "prod-events-queue-dlq"])
    let productionAfter = try await object(production, "runbook/unisync-prod/state.json")
    XCTAssertEqual(productionAfter, productionBytes)
    let status = try await production.run(state + ["status"])
    XCTAssertTrue(status.stdout.contains("QUEUE_URL_PROD_EVENTS_QUEUE="), status.stdout)
  }
}
