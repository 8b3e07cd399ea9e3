import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// A table of malformed inputs. Each must give exit 2 (3 for a held lock), one line naming the file
/// or field, no aws call (no write for the one case that needs the account to tell), and every
/// state file byte-for-byte unchanged.
final class BadInputCorpusTests: XCTestCase {
  struct Case {
    var name: String
    var arguments: [String] = ["run", "network", "--yes"]
    var status: Int32 = 2
    var mentions: [String]
    var environment: [String: String] = [:]
    var configure: (inout [String: Any]) -> Void = { _ in }
    /// Reads are allowed (the case needs the account the credentials belong to); never a write.
    var reads = false
    /// PATH made from nothing: a new empty folder with links to only these programs (from the
    /// test's own PATH). Nil: the harness's PATH.
    var isolatedPath: [String]?
    /// Changes the seeded state directory or the configuration file before the run.
    var prepare: (Workspace) throws -> Void = { _ in }
  }

  static func editing(_ path: [String], _ value: Any?) -> (inout [String: Any]) -> Void {
    { config in config = setting(config, path[...], value) }
  }

  static func setting(_ object: [String: Any], _ path: ArraySlice<String>, _ value: Any?)
    -> [String: Any]
  {
    var object = object
    guard let key = path.first else { return object }
    if path.count == 1 {
      object[key] = value
    } else if let index = Int(path[path.index(after: path.startIndex)]),
      var array = object[key] as? [[String: Any]]
    {
      array[index] = setting(array[index], path.dropFirst(2), value)
      object[key] = array
    } else {
      object[key] = setting(object[key] as? [String: Any] ?? [:], path.dropFirst(), value)
    }
    return object
  }

  static func rewriteState(_ transform: @escaping (String) -> String) -> (Workspace) throws -> Void
  {
    { workspace in
      let path = workspace.stateDirectory + "/state.json"
      try transform(try String(contentsOfFile: path, encoding: .utf8)).write(
        toFile: path, atomically: false, encoding: .utf8)
    }
  }

  static func truncateState(at fraction: Double) -> (Workspace) throws -> Void {
    { workspace in
      let url = URL(fileURLWithPath: workspace.stateDirectory + "/state.json")
      let data = try Data(contentsOf: url)
      try data.prefix(Int(Double(data.count) * fraction)).write(to: url)
    }
  }

  /// A journal line that is not an entry, put between two good ones.
  static func damageJournal(_ line: String) -> (Workspace) throws -> Void {
    { workspace in
      let path = workspace.stateDirectory + "/journal.jsonl"
      let lineage = try workspace.checkpoint().lineage
      let after = try String(
        decoding: JSONEncoder().encode(
          JournalEntry(lineage: lineage, event: .intent, action: "network/igw")), as: UTF8.self)
      let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
      handle.seekToEndOfFile()
      handle.write(Data((line + "\n" + after + "\n").utf8))
      try handle.close()
    }
  }

  nonisolated(unsafe) static let cases: [Case] = [
    Case(
      name: "state truncated to nothing", mentions: ["state.json", "empty"],
      prepare: truncateState(at: 0)),
    Case(
      name: "state truncated at 10%", mentions: ["state.json", "truncated"],
      prepare: truncateState(at: 0.1)),
    Case(
      name: "state truncated at 50%", mentions: ["state.json", "truncated"],
      prepare: truncateState(at: 0.5)),
    Case(
      name: "state truncated at 90%", mentions: ["state.json", "truncated"],
      prepare: truncateState(at: 0.9)),
    Case(
      name: "state missing its closing brace", mentions: ["state.json"],
      prepare: { workspace in
        let url = URL(fileURLWithPath: workspace.stateDirectory + "/state.json")
        try Data(contentsOf: url).dropLast(2).write(to: url)
      }),
    Case(
      name: "state of an unknown format version", mentions: ["state.json", "format version 7"],
      prepare: rewriteState {
        $0.replacingOccurrences(of: "\"formatVersion\" : 1", with: "\"formatVersion\" : 7")
      }),
    Case(
      name: "state with a field of the wrong type", mentions: ["state.json", "wrong type"],
      prepare: rewriteState {
        $0.replacingOccurrences(of: "\"serial\" : ", with: "\"serial\" : \"x\", \"ignored\" : ")
      }),
    Case(
      name: "state with a wrong lineage", mentions: ["state.json", "lineage"],
      prepare: rewriteState { text in
        text.replacingOccurrences(
          of: #""lineage" : "[^"]+""#, with: #""lineage" : "not a lineage""#,
          options: .regularExpression)
      }),
    Case(
      name: "state of another region",
      arguments: ["--region", "eu-west-1", "run", "network", "--yes"],
      mentions: ["state.json", "eu-west-1"]),
    Case(
      name: "state of another deployment", mentions: ["state.json", "unisync-prod"],
      configure: editing(["deployment"], "unisync-prod")),
    Case(
      name: "journal with a line cut short in the middle",
      mentions: ["journal.jsonl", "line 2 is not a journal entry", "invalid JSON"],
      prepare: damageJournal(#"{"action":"network/subnet-public-2c","at":"2026-"#)),
    Case(
      name: "journal with a line of the wrong shape in the middle",
      mentions: ["journal.jsonl", "line 2 is not a journal entry", "wrong type"],
      prepare: damageJournal(#"{"action":"network/vpc","event":"maybe","lineage":"x","at":"1"}"#)),
    Case(
      name: "journal with bytes that are not text in the middle",
      mentions: ["journal.jsonl", "line 2 is not a journal entry"],
      prepare: damageJournal("\u{1}\u{2}garbage\u{7f}")),
    Case(
      name: "state of another account", mentions: ["state.json", "999999999999"], reads: true,
      prepare: rewriteState { $0.replacingOccurrences(of: "123456789012", with: "999999999999") }),
    Case(
      name: "configuration that is not JSON", mentions: ["config.json", "not valid JSON"],
      prepare: {
        try "{ \"deployment\": ".write(toFile: $0.configPath, atomically: false, encoding: .utf8)
      }),
    Case(
      name: "unknown top-level key", mentions: ["config.json", "color", "not a known setting"],
      configure: editing(["color"], "blue")),
    Case(
      name: "unknown nested key", mentions: ["config.json", "rds.password", "not a known setting"],
      configure: editing(["rds", "password"], "hunter2")),
    Case(
      name: "port given as a string", mentions: ["config.json", "services[0].port"],
      configure: editing(["services", "0", "port"], "8080")),
    Case(
      name: "name given as a number", mentions: ["config.json", "network.vpc.name"],
      configure: editing(["network", "vpc", "name"], 42)),
    Case(
      name: "subnets given as an object", mentions: ["config.json", "network.subnets"],
      configure: editing(["network", "subnets"], ["a": 1])),
    Case(
      name: "multiAZ given as a string", mentions: ["config.json", "rds.multiAZ"],
      configure: editing(["rds", "multiAZ"], "yes")),
    Case(
      name: "CIDR prefix out of range",
      mentions: ["config.json", "network.vpc.cidr", "10.0.0.0/33"],
      configure: editing(["network", "vpc", "cidr"], "10.0.0.0/33")),
    Case(
      name: "CIDR with host bits", mentions: ["config.json", "network.subnets[0].cidr"],
      configure: editing(["network", "subnets", "0", "cidr"], "10.0.1.7/24")),
    Case(
      name: "CIDR octet out of range", mentions: ["config.json", "network.subnets[1].cidr"],
      configure: editing(["network", "subnets", "1", "cidr"], "10.0.300.0/24")),
    Case(
      name: "subnet outside the VPC",
      mentions: ["config.json", "network.subnets[2].cidr", "not inside"],
      configure: editing(["network", "subnets", "2", "cidr"], "192.168.1.0/24")),
    Case(
      name: "port zero", mentions: ["config.json", "securityGroups.rds.port"],
      configure: editing(["securityGroups", "rds", "port"], 0)),
    Case(
      name: "port above 65535", mentions: ["config.json", "services[3].port", "70000"],
      configure: editing(["services", "3", "port"], 70000)),
    Case(
      name: "DB identifier AWS rejects", mentions: ["config.json", "rds.instance", "1-mysql"],
      configure: editing(["rds", "instance"], "1-mysql")),
    Case(
      name: "queue name AWS rejects", mentions: ["config.json", "sqs.queues[1]"],
      configure: editing(["sqs", "queues"], ["assignment-events-queue", "bad queue name"])),
    Case(
      name: "secret name AWS rejects", mentions: ["config.json", "secrets.encryptionKey"],
      configure: editing(["secrets", "encryptionKey"], "unisync/encryption key")),
    Case(
      name: "health check path without its '/'",
      mentions: ["config.json", "ecs.healthCheckPath", "must start with '/'"],
      configure: editing(["ecs", "healthCheckPath"], "actuator/health")),
    Case(
      name: "health check interval below CreateTargetGroup's 5 s",
      mentions: ["config.json", "ecs.healthCheckIntervalSeconds", "(5-300)"],
      configure: editing(["ecs", "healthCheckIntervalSeconds"], 4)),
    Case(
      name: "health check timeout not less than the interval",
      mentions: ["config.json", "ecs.healthCheckTimeoutSeconds", "less than"],
      configure: { config in
        config = BadInputCorpusTests.setting(config, ["ecs", "healthCheckIntervalSeconds"], 10)
        config = BadInputCorpusTests.setting(config, ["ecs", "healthCheckTimeoutSeconds"], 10)
      }),
    Case(
      name: "healthy threshold above 10",
      mentions: ["config.json", "ecs.healthyThresholdCount", "(2-10)"],
      configure: editing(["ecs", "healthyThresholdCount"], 11)),
    Case(
      name: "unhealthy threshold below 2",
      mentions: ["config.json", "ecs.unhealthyThresholdCount", "(2-10)"],
      configure: editing(["ecs", "unhealthyThresholdCount"], 1)),
    Case(
      name: "negative grace period",
      mentions: ["config.json", "ecs.healthCheckGracePeriodSeconds", "(0-2147483647)"],
      configure: editing(["ecs", "healthCheckGracePeriodSeconds"], -1)),
    Case(
      name: "zone outside the region", mentions: ["config.json", "network.subnets[0].zone"],
      configure: editing(["network", "subnets", "0", "zone"], "us-east-1a")),
    Case(
      name: "region that does not exist", mentions: ["config.json", "region"],
      configure: editing(["region"], "mars-1")),
    Case(
      name: "unknown step", arguments: ["run", "vpc", "--yes"], mentions: ["unknown step 'vpc'"]),
    Case(
      name: "unknown option", arguments: ["run", "--force-everything"],
      mentions: ["--force-everything"]),
    Case(name: "no aws on PATH", mentions: ["'aws'", "PATH"], isolatedPath: []),
    Case(
      name: "jobs that is not a number", arguments: ["run", "--yes", "--jobs", "many"],
      mentions: ["--jobs"]),
    Case(
      name: "lock held by another run", status: 3, mentions: ["lock", "pid"],
      prepare: { workspace in
        BadInputCorpusTests.heldLock = try StateDirectory(path: workspace.stateDirectory).lock(
          command: "runbook run (corpus)")
      }),
  ]

  nonisolated(unsafe) static var heldLock: StateLock?

  func testEveryMalformedInputIsRejectedBeforeAnythingHappens() async throws {
    try Emulator.reset()
    XCTAssertGreaterThanOrEqual(Self.cases.count, 30)
    for entry in Self.cases {
      let workspace = try seededWorkspace(configure: entry.configure)
      try entry.prepare(workspace)
      defer {
        Self.heldLock?.release()
        Self.heldLock = nil
      }
      let before = workspace.stateSnapshot().filter { !$0.key.hasPrefix("logs/") }
      let configBefore = FileManager.default.contents(atPath: workspace.configPath)
      let log = workspace.directory.appendingPathComponent("aws.log").path
      var environment = entry.environment.merging(["RUNBOOK_AWS_LOG": log]) { $1 }
      if let programs = entry.isolatedPath {
        environment["PATH"] = try isolatedPath(programs, in: workspace)
        XCTAssertNil(
          findExecutable("aws", path: environment["PATH"]), "case '\(entry.name)': aws on PATH")
      }
      let run = try await workspace.run(entry.arguments, environment: environment)
      let context = "case '\(entry.name)': \(run.summary)"
      XCTAssertEqual(run.status, entry.status, context)
      XCTAssertEqual(
        run.stderr.split(separator: "\n").count, 1, "one line of reason expected; \(context)")
      for word in entry.mentions {
        XCTAssertTrue(run.stderr.contains(word), "'\(word)' missing; \(context)")
      }
      let calls = loggedAWSCalls(log)
      XCTAssertTrue(
        calls.filter { $0["write"] as? Bool == true }.isEmpty, "a write reached aws; \(context)")
      if !entry.reads {
        XCTAssertEqual(calls.count, 0, "aws was called: \(calls); \(context)")
      }
      let after = workspace.stateSnapshot().filter { !$0.key.hasPrefix("logs/") }
      XCTAssertEqual(after, before, "state files changed; \(context)")
      XCTAssertEqual(
        FileManager.default.contents(atPath: workspace.configPath), configBefore, context)
    }
  }

  /// A `--state-dir` that names a file, or a folder under one, is refused before any aws call
  /// (exit 2, one line naming the path), and the file is left as it is.
  func testUnwritableStateDirectoryIsRejected() async throws {
    let workspace = try Workspace()
    let file = workspace.directory.appendingPathComponent("a-file").path
    _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
    for (stateDirectory, reason) in [
      (file, "a file, not a folder"), (file + "/state", "\(file) is a file, not a folder"),
    ] {
      let log = workspace.directory.appendingPathComponent("aws-\(UUID().uuidString).log").path
      let run = try await workspace.runRaw(
        [
          "--config", workspace.configPath, "--state-dir", stateDirectory, "--endpoint-url",
          workspace.endpoint,
          "run", "network", "--yes",
        ], environment: ["RUNBOOK_AWS_LOG": log])
      XCTAssertEqual(run.status, 2, run.summary)
      XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
      XCTAssertTrue(
        run.stderr.contains("\(stateDirectory): cannot write the checkpoint"), run.stderr)
      XCTAssertTrue(run.stderr.contains(reason), run.stderr)
      XCTAssertEqual(loggedAWSCalls(log).count, 0, "aws was called")
      XCTAssertEqual(FileManager.default.contents(atPath: file), Data("x".utf8))
    }
  }

  /// A folder holding links to only `programs` (found on the test's PATH), made from nothing.
  func isolatedPath(_ programs: [String], in workspace: Workspace) throws -> String {
    let folder = workspace.directory.appendingPathComponent("path-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for program in programs {
      let found = try XCTUnwrap(
        findExecutable(program, path: ProcessInfo.processInfo.environment["PATH"]), program)
      try FileManager.default.createSymbolicLink(
        atPath: folder.appendingPathComponent(program).path, withDestinationPath: found)
    }
    return folder.path
  }

}
