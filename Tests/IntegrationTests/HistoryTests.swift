import Foundation
import RunbookCLI
import RunbookState
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// `runbook history`: a run that succeeded, one that failed, one killed before it could record its
/// end, and the run that resumed it, as text and as JSON, with the state in a folder and in S3.
final class HistoryTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  /// A workspace whose sqs step makes one queue and its dead-letter queue (quick to run).
  func smallWorkspace(name: String = #function) throws -> Workspace {
    try Workspace(name: name) { config in
      config["sqs"] = [
        "queues": ["events-queue"],
        "deadLetter": [
          "queue": "events-queue-dlq", "source": "events-queue", "maxReceiveCount": 5,
        ],
      ]
    }
  }

  /// The history's runs as `history --json` prints them, newest first.
  func historyRuns(_ workspace: Workspace, _ global: [String] = []) async throws -> [[String: Any]]
  {
    let listed = try await workspace.run(global + ["history", "--json"])
    XCTAssertEqual(listed.status, 0, listed.summary)
    let document = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any],
      listed.stdout)
    XCTAssertEqual(document["schemaVersion"] as? Int, 1)
    XCTAssertEqual(document["deployment"] as? String, "unisync")
    return try XCTUnwrap(document["runs"] as? [[String: Any]])
  }

  func changes(_ run: [String: Any], _ outcome: String) -> [String] {
    (run["changes"] as? [[String: Any]] ?? []).filter { $0["outcome"] as? String == outcome }
      .compactMap { $0["action"] as? String }
  }

  /// Edits the workspace's configuration file in place.
  func edit(_ workspace: Workspace, _ change: (inout [String: Any]) -> Void) throws {
    let url = URL(fileURLWithPath: workspace.configPath)
    var config = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    change(&config)
    try JSONSerialization.data(withJSONObject: config).write(to: url)
  }

  func setZone(_ zone: String) -> (inout [String: Any]) -> Void {
    { config in
      var network = config["network"] as! [String: Any]
      var subnets = network["subnets"] as! [[String: Any]]
      subnets[3]["zone"] = zone
      network["subnets"] = subnets
      config["network"] = network
    }
  }

  /// Kills `run network` (`--jobs 1`) right after its `point`-th aws write.
  func runKilled(_ workspace: Workspace, _ global: [String], at point: Int) async throws {
    let counter = workspace.directory.appendingPathComponent("counter-\(point)").path
    try Data().write(to: URL(fileURLWithPath: counter))
    let killed = try await workspace.run(
      global + ["run", "network", "--yes", "--jobs", "1"],
      environment: ["RUNBOOK_CRASH_AT": "\(point)", "RUNBOOK_CRASH_COUNTER": counter])
    XCTAssertTrue(killed.signaled && killed.status == SIGKILL, killed.summary)
  }

  func testSucceededFailedKilledAndResumedRunsNewestFirst() async throws {
    let workspace = try smallWorkspace()
    let empty = try await workspace.run(["history"])
    XCTAssertEqual(empty.status, 0, empty.summary)
    XCTAssertTrue(empty.stdout.hasPrefix("no run of unisync is recorded in "), empty.stdout)

    let sqs = try await workspace.run(["run", "sqs", "--yes"])
    XCTAssertEqual(sqs.status, 0, sqs.summary)
    try edit(workspace, setZone("ap-northeast-2z"))
    let failed = try await workspace.run(["run", "network", "--yes", "--jobs", "1"])
    XCTAssertEqual(failed.status, 1, failed.summary)
    try edit(workspace, setZone("ap-northeast-2c"))
    // The subnet the failed run could not make, then the internet gateway's create: killed after
    // it returned, before its result was journaled.
    try await runKilled(workspace, [], at: 2)
    let resumed = try await workspace.run(["run", "network", "--yes"])
    XCTAssertEqual(resumed.status, 0, resumed.summary)
    // A run with nothing to do took no lock and changed nothing: it is not a run of the history.
    let nothing = try await workspace.run(["run", "sqs", "--yes"])
    XCTAssertTrue(nothing.stdout.contains("nothing to do"), nothing.summary)

    let runs = try await historyRuns(workspace)
    XCTAssertEqual(
      runs.map { $0["outcome"] as? String }, ["succeeded", "interrupted", "failed", "succeeded"])
    XCTAssertEqual(runs.map { $0["exitStatus"] as? Int }, [0, nil, 1, 0])
    XCTAssertEqual(runs.map { $0["endRecorded"] as? Bool }, [true, false, true, true])
    XCTAssertEqual(
      runs.map { $0["steps"] as? [String] }, [["network"], ["network"], ["network"], ["sqs"]])
    let started = runs.compactMap { $0["startedAt"] as? String }
    XCTAssertEqual(started, started.sorted(by: >), "newest first")
    let user = ProcessInfo.processInfo.environment["USER"] ?? ProcessInfo.processInfo.userName
    for run in runs {
      XCTAssertEqual(run["user"] as? String, user)
      XCTAssertEqual(run["host"] as? String, ProcessInfo.processInfo.hostName)
      let command = try XCTUnwrap(run["command"] as? String)
      XCTAssertTrue(command.hasPrefix("runbook --config "), command)
      XCTAssertTrue(command.contains(" run "), command)
      XCTAssertNotNil(run["log"] as? String)
    }
    let (newest, killed, failure, first) = (runs[0], runs[1], runs[2], runs[3])
    XCTAssertEqual(
      Set(changes(first, "created")), ["sqs/queue-events-queue", "sqs/queue-events-queue-dlq"])
    XCTAssertNotNil(first["durationSeconds"] as? Double)
    // The failed run made the VPC and the subnets before the one in a zone that does not exist.
    XCTAssertTrue(changes(failure, "created").contains("network/vpc"), "\(failure)")
    XCTAssertFalse(changes(failure, "created").contains("network/subnet-private-2c"))
    XCTAssertTrue(
      (failure["failure"] as? String ?? "").contains("step 'network' failed"), "\(failure)")
    // The killed run: no end, no exit status, and what its journal says it created.
    XCTAssertNil(killed["endedAt"] as? String)
    XCTAssertEqual(changes(killed, "created"), ["network/subnet-private-2c"], "\(killed)")
    let values = (killed["changes"] as? [[String: Any]] ?? []).compactMap { $0["value"] as? String }
    XCTAssertTrue(values.allSatisfy { $0.hasPrefix("subnet-") }, "\(values)")
    // The run that resumed it recovered the create it was killed after, and made the rest.
    XCTAssertEqual(changes(newest, "recovered"), ["network/internet-gateway"], "\(newest)")
    XCTAssertTrue(changes(newest, "created").contains("network/nat-gateway"), "\(newest)")
    XCTAssertFalse(changes(newest, "created").contains("network/vpc"))

    let text = try await workspace.run(["history"])
    XCTAssertEqual(text.status, 0, text.summary)
    let blocks = text.stdout.components(separatedBy: "\n").filter { !$0.hasPrefix(" ") }
    XCTAssertEqual(blocks.filter { !$0.isEmpty }.count, 4, text.stdout)
    XCTAssertTrue(blocks[0].contains("succeeded (exit 0)"), text.stdout)
    XCTAssertTrue(
      blocks[1].contains("interrupted (killed: its end was never recorded)"), text.stdout)
    XCTAssertTrue(blocks[2].contains("failed (exit 1)"), text.stdout)
    XCTAssertTrue(blocks[0].hasSuffix("\(user)@\(ProcessInfo.processInfo.hostName)"), text.stdout)
    for line in [
      "  steps: sqs", "  created (1): network/subnet-private-2c",
      "  stopped by: step 'network' failed at action 'subnet-private-2c'",
    ] {
      XCTAssertTrue(text.stdout.contains(line), "'\(line)' missing:\n\(text.stdout)")
    }
  }

  /// With the state in S3, the history is one object beside the journal: a run killed there
  /// (lock left, then `unlock`) shows as interrupted with what the S3 journal says it made.
  func testHistoryInS3ShowsEveryRunAndTheKilledOneFromTheJournal() async throws {
    let workspace = try smallWorkspace()
    _ = try await workspace.aws([
      "s3api", "create-bucket", "--bucket", "runbook-history", "--create-bucket-configuration",
      "LocationConstraint=ap-northeast-2",
    ])
    let state = ["--state", "s3://runbook-history"]
    let sqs = try await workspace.run(state + ["run", "sqs", "--yes"])
    XCTAssertEqual(sqs.status, 0, sqs.summary)
    // Lock, history, the VPC's intent, create-vpc, result and checkpoint: killed after that.
    try await runKilled(workspace, state, at: 6)
    let unlocked = try await workspace.run(state + ["unlock", "--yes", "--force"])
    XCTAssertEqual(unlocked.status, 0, unlocked.summary)
    let resumed = try await workspace.run(state + ["run", "network", "--yes"])
    XCTAssertEqual(resumed.status, 0, resumed.summary)
    XCTAssertNil(workspace.stateBytes, "nothing of the state is kept locally")
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: workspace.stateDirectory + "/history.jsonl"))

    let runs = try await historyRuns(workspace, state)
    XCTAssertEqual(
      runs.map { $0["outcome"] as? String }, ["succeeded", "interrupted", "succeeded"])
    XCTAssertEqual(runs.map { $0["endRecorded"] as? Bool }, [true, false, true])
    XCTAssertEqual(changes(runs[1], "created"), ["network/vpc"], "\(runs[1])")
    XCTAssertFalse(changes(runs[0], "created").contains("network/vpc"), "\(runs[0])")
    XCTAssertTrue(changes(runs[0], "created").contains("network/nat-gateway"), "\(runs[0])")
    XCTAssertEqual(
      Set(changes(runs[2], "created")), ["sqs/queue-events-queue", "sqs/queue-events-queue-dlq"])
    let text = try await workspace.run(state + ["history"])
    XCTAssertTrue(
      text.stdout.contains("interrupted (killed: its end was never recorded)"), text.summary)
  }

  /// `state push` and `state pull` carry the run history with the checkpoint and journal:
  /// `history` shows the same runs on both sides, and a second copy adds no record twice.
  func testStatePushAndPullCarryTheRunHistory() async throws {
    let workspace = try smallWorkspace()
    _ = try await workspace.aws([
      "s3api", "create-bucket", "--bucket", "runbook-carry", "--create-bucket-configuration",
      "LocationConstraint=ap-northeast-2",
    ])
    let state = ["--state", "s3://runbook-carry"]
    let sqs = try await workspace.run(["run", "sqs", "--yes"])
    XCTAssertEqual(sqs.status, 0, sqs.summary)
    let local = try await historyRuns(workspace)
    XCTAssertEqual(local.count, 1)

    let pushed = try await workspace.run(state + ["state", "push"])
    XCTAssertEqual(pushed.status, 0, pushed.summary)
    XCTAssertTrue(pushed.stdout.contains("and 2 run history record(s)"), pushed.stdout)
    let remote = try await historyRuns(workspace, state)
    XCTAssertEqual(remote.map { $0["run"] as? String }, local.map { $0["run"] as? String })
    XCTAssertEqual(remote.map { $0["outcome"] as? String }, ["succeeded"])
    XCTAssertEqual(
      Set(changes(remote[0], "created")), ["sqs/queue-events-queue", "sqs/queue-events-queue-dlq"])

    // A run on the S3 state, then a pull into a new folder: both runs, as S3 shows them.
    try edit(workspace) { config in
      var sqs = config["sqs"] as! [String: Any]
      sqs["queues"] = ["events-queue", "other-queue"]
      config["sqs"] = sqs
    }
    let more = try await workspace.run(state + ["run", "sqs", "--yes"])
    XCTAssertEqual(more.status, 0, more.summary)
    let both = try await historyRuns(workspace, state)
    XCTAssertEqual(both.count, 2)
    let folder = workspace.directory.appendingPathComponent("pulled").path
    let elsewhere = state + ["--state-dir", folder]
    let pulled = try await workspace.run(elsewhere + ["state", "pull"])
    XCTAssertEqual(pulled.status, 0, pulled.summary)
    XCTAssertTrue(pulled.stdout.contains("and 4 run history record(s)"), pulled.stdout)
    let shown = try await historyRuns(workspace, ["--state-dir", folder])
    XCTAssertEqual(shown.map { $0["run"] as? String }, both.map { $0["run"] as? String })
    XCTAssertEqual(shown.map { $0["outcome"] as? String }, ["succeeded", "succeeded"])
    XCTAssertEqual(changes(shown[0], "created"), ["sqs/queue-other-queue"], "\(shown[0])")
    let text = try await workspace.run(["--state-dir", folder, "history"])
    XCTAssertEqual(
      text.stdout.components(separatedBy: "succeeded (exit 0)").count - 1, 2, text.stdout)

    // Pulled again: the same checkpoint, and no record twice.
    let again = try await workspace.run(elsewhere + ["state", "pull"])
    XCTAssertEqual(again.status, 0, again.summary)
    XCTAssertTrue(again.stdout.contains("and 0 run history record(s)"), again.stdout)
    let records = try HistoryFile(path: folder + "/history.jsonl").records()
    XCTAssertEqual(records.count, 4, "\(records.map(\.run))")
  }

  /// `status --json` has the critical path of the last run that ran an action, as `run` printed
  /// it, with the run it belongs to (the newest in `history`); a run with nothing to do keeps it.
  /// The text `status` shows it on one line.
  func testStatusJSONHasTheLastRunsCriticalPath() async throws {
    let workspace = try smallWorkspace()
    let before = try await workspace.run(["status", "--json"])
    let empty = try JSONSerialization.jsonObject(with: Data(before.stdout.utf8)) as? [String: Any]
    XCTAssertNil(empty?["criticalPath"], before.stdout)
    let sqs = try await workspace.run(["run", "sqs", "--yes"])
    XCTAssertEqual(sqs.status, 0, sqs.summary)
    let printed = try XCTUnwrap(
      sqs.stdout.split(separator: "\n").first { $0.hasPrefix("critical path: ") }, sqs.stdout)
    let nothing = try await workspace.run(["run", "sqs", "--yes"])
    XCTAssertTrue(nothing.stdout.contains("nothing to do"), nothing.summary)

    let status = try await workspace.run(["status", "--json"])
    XCTAssertEqual(status.status, 0, status.summary)
    let document = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
    let schema = try JSONSerialization.jsonObject(
      with: Data(contentsOf: repositoryRoot.appendingPathComponent("docs/status-schema.json")))
    XCTAssertEqual(validate(document, against: schema as! [String: Any], at: "$"), [])
    let path = try XCTUnwrap(document["criticalPath"] as? [String: Any], status.stdout)
    XCTAssertEqual("critical path: " + (path["description"] as? String ?? ""), String(printed))
    let links = try XCTUnwrap(path["links"] as? [[String: Any]])
    XCTAssertFalse(links.isEmpty)
    XCTAssertTrue(
      links.allSatisfy { ($0["action"] as? String ?? "").hasPrefix("sqs/") }, "\(links)")
    let total = try XCTUnwrap(path["seconds"] as? Double)
    let sum = links.compactMap { $0["seconds"] as? Double }.reduce(0, +)
    XCTAssertGreaterThanOrEqual(total + 0.01, sum, "the chain spans at least its links")
    XCTAssertEqual(path["outcome"] as? String, "succeeded")
    let runs = try await historyRuns(workspace)
    XCTAssertEqual(path["run"] as? String, runs.first?["run"] as? String)
    // The text says it too, on one line.
    let text = try await workspace.run(["status"])
    XCTAssertEqual(text.status, 0, text.summary)
    let line = try XCTUnwrap(
      text.stdout.split(separator: "\n").first { $0.hasPrefix("critical path of the last run (") },
      text.stdout)
    XCTAssertTrue(
      line.hasSuffix("): " + (path["description"] as? String ?? "?")), String(line))
  }
}
