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

/// `RUNBOOK_CRASH_ALL=1` (`make crash-all`): crash chains interrupt after every write instead of
/// a deterministic sample.
let crashAll = ProcessInfo.processInfo.environment["RUNBOOK_CRASH_ALL"] == "1"

/// `count` write numbers spread evenly over 1...`total` (the middle of each of `count` equal
/// slices): the same points on every run.
func sampledWrites(_ count: Int, of total: Int) -> [Int] {
  guard count < total else { return Array(1...max(total, 1)) }
  return (0..<count).map { 1 + Int((Double($0) + 0.5) * Double(total) / Double(count)) }
    .map { min($0, total) }
}

/// A kill while the tool waits for something: the first call whose argv (joined by spaces)
/// matches `pattern` (the aws shim's RUNBOOK_KILL_MATCH) ends the run with SIGKILL.
struct WaitKill {
  var name: String
  var pattern: String
}

/// One interruption of a chain.
struct Interruption: CustomStringConvertible {
  enum Point {
    /// Right after the write with this number (counted over the whole chain) returned.
    case write(Int)
    /// While waiting (``WaitKill``).
    case wait(String)
  }
  var point: Point
  var signal: Int32
  var run: ToolRun

  var description: String {
    let name = signal == SIGINT ? "SIGINT" : "SIGKILL"
    switch point {
    case .write(let number): return "\(name) after write \(number)"
    case .wait(let wait): return "\(name) in \(wait)"
    }
  }
}

/// What an interrupted chain of runs did.
struct InterruptedChain {
  var interruptions: [Interruption] = []
  /// The run that ended by itself (nil when the limit of runs was reached first).
  var finished: ToolRun?
  /// Write calls made by all runs (the aws and docker shims' shared counter).
  var writes = 0
  /// Sampled points the chain never reached.
  var missed: [Int] = []
  var waitsMissed: [String] = []
  /// Sampled points whose write was also the call a ``WaitKill`` matched: that kill served both.
  var servedByWaits: [Int] = []
  /// With ``crashAll``: writes passed over as kill points (the write after one killed twice in a
  /// row, see ``Workspace/runInterrupted(_:at:interrupt:waits:environment:limit:check:)``).
  var skipped: [Int] = []
}

extension Workspace {
  /// Runs `arguments --jobs 1` again and again, interrupting each run at the next point, until
  /// a run ends by itself. Write calls (aws writes and docker pushes) are numbered over the whole
  /// chain, so `points` are positions in the sequence of writes of the deployment; with
  /// ``crashAll`` every write is a point. A point in `interrupt` gets SIGINT (the tool must stop
  /// and exit 130), any other SIGKILL. Each of `waits` kills, once, the first run that reaches it.
  /// `check` looks at each interrupted run.
  func runInterrupted(
    _ arguments: [String], at points: [Int], interrupt: Set<Int> = [], waits: [WaitKill] = [],
    environment: [String: String] = [:], limit: Int = 400,
    check: (Interruption) throws -> Void = { _ in }
  ) async throws -> InterruptedChain {
    let counter = directory.appendingPathComponent("chain-writes").path
    let matches = directory.appendingPathComponent("chain-matches").path
    try Data().write(to: URL(fileURLWithPath: counter))
    func written() -> Int {
      Int(
        ((try? String(contentsOfFile: counter, encoding: .utf8)) ?? "")
          .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }
    var chain = InterruptedChain()
    var pending = points.sorted()
    var waiting = waits
    // With every write a kill point: the action the last write kill stopped, and whether the
    // kill before it stopped the same one. A write that fails until its run records it (create-role
    // of a role that existed: EntityAlreadyExists) is the next write of every run after its kill;
    // killing it again and again would never let a run get past it, so once it repeats, the run
    // after is killed at the write after it.
    var lastKilledAction: String?
    var repeated = false
    for _ in 0..<limit {
      let done = written()
      chain.missed += pending.filter { $0 <= done }
      pending.removeAll { $0 <= done }
      let skip = repeated && !interrupt.contains(done + 1)
      let next = crashAll ? done + (skip ? 2 : 1) : pending.first
      if crashAll && skip { chain.skipped.append(done + 1) }
      var variables = environment
      variables["RUNBOOK_CRASH_COUNTER"] = counter
      // Without a point left the shims still count (a number no run reaches).
      variables["RUNBOOK_CRASH_AT"] = String(next ?? Int(Int32.max))
      variables["RUNBOOK_CRASH_SIGNAL"] =
        next.map { interrupt.contains($0) } == true ? "INT" : "KILL"
      if let wait = waiting.first {
        try Data().write(to: URL(fileURLWithPath: matches))
        variables["RUNBOOK_KILL_MATCH"] = wait.pattern
        variables["RUNBOOK_KILL_MATCH_COUNTER"] = matches
        variables["RUNBOOK_KILL_MATCH_SIGNAL"] = "KILL"
      }
      let run = try await self.run(arguments + ["--jobs", "1"], environment: variables)
      let killed = run.signaled && run.status == SIGKILL
      let interrupted = !run.signaled && run.status == 130
      guard killed || interrupted else {
        chain.finished = run
        break
      }
      let matched =
        !waiting.isEmpty
        && (try? String(contentsOfFile: matches, encoding: .utf8))?
          .trimmingCharacters(in: .whitespacesAndNewlines) == "1"
      let interruption: Interruption
      if matched && killed {
        interruption = Interruption(
          point: .wait(waiting.removeFirst().name), signal: SIGKILL, run: run)
      } else {
        interruption = Interruption(
          point: .write(written()), signal: interrupted ? SIGINT : SIGKILL, run: run)
      }
      // (A matching call can be the sampled write too: that kill served both.)
      if case .wait = interruption.point {
        chain.servedByWaits += pending.filter { $0 <= written() }
      }
      pending.removeAll { $0 <= written() }
      chain.interruptions.append(interruption)
      try check(interruption)
      if crashAll, case .write = interruption.point {
        let action = lastIntent()
        repeated = action != nil && action == lastKilledAction
        lastKilledAction = action
      } else {
        repeated = false
      }
    }
    chain.writes = written()
    chain.missed += pending
    chain.waitsMissed = waiting.map(\.name)
    return chain
  }
}

extension Workspace {
  /// The action of the last intent in the journal: the write a killed run was making.
  func lastIntent() -> String? {
    guard
      let text = try? String(contentsOfFile: stateDirectory + "/journal.jsonl", encoding: .utf8)
    else { return nil }
    for line in text.split(separator: "\n").reversed() {
      if let entry = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        entry["event"] as? String == "intent"
      {
        return entry["action"] as? String
      }
    }
    return nil
  }
}

/// Everything a deployment of the local configuration (network through sqs) leaves, kind by kind,
/// each item described by what the guide sets; the ecr, ecs and lambda kinds are those of
/// ``ResourceNames/inventory(endpoint:exports:registryPassword:)``.
func wholeInventory(_ workspace: Workspace, registryPassword: String) async throws -> [String:
  [String]]
{
  func list(_ arguments: [String], _ key: String) async throws -> [[String: Any]] {
    (try await workspace.aws(arguments) as? [String: Any])?[key] as? [[String: Any]] ?? []
  }
  var inventory = try await networkInventory(workspace)
  inventory["security-group"] = try await securityGroups(workspace).map(\.line).sorted()
  // The names the services are found by: the namespace, one Cloud Map service per ECS service.
  inventory["cloud-map"] =
    try await list(["servicediscovery", "list-namespaces"], "Namespaces").map {
      "namespace \($0["Name"] as? String ?? "?") \($0["Type"] as? String ?? "?")"
    }
    + list(["servicediscovery", "list-services"], "Services").map {
      "service \($0["Name"] as? String ?? "?")"
    }.sorted()
  inventory["db-subnet-group"] = try await list(
    ["rds", "describe-db-subnet-groups"], "DBSubnetGroups"
  )
  .map {
    "\($0["DBSubnetGroupName"] as? String ?? "?") subnets=\(($0["Subnets"] as? [Any] ?? []).count)"
  }
  inventory["db-instance"] = try await list(["rds", "describe-db-instances"], "DBInstances").map {
    "\($0["DBInstanceIdentifier"] as? String ?? "?") \($0["DBInstanceStatus"] as? String ?? "?")"
  }
  // The master password's secret is named by RDS (rds!db-<id>).
  inventory["secret"] = try await list(["secretsmanager", "list-secrets"], "SecretList").compactMap
  {
    $0["Name"] as? String
  }.map { $0.hasPrefix("rds!db-") ? "rds!db-… (the master password)" : $0 }.sorted()
  inventory["queue"] = try await sqsInventory(workspace).map { queue in
    let target = (queue.redrivePolicy?["deadLetterTargetArn"] as? String)?.split(separator: ":")
      .last
    return queue.name
      + (target.map { " -> \($0) after \(queue.redrivePolicy?["maxReceiveCount"] ?? "?")" } ?? "")
  }
  let exports = try workspace.checkpoint().exports
  let services = try await ResourceNames.guide.inventory(
    endpoint: workspace.endpoint, exports: exports, registryPassword: registryPassword)
  inventory.merge(services.lines) { $1 }
  return inventory
}

/// What ``wholeInventory(_:registryPassword:)`` finds after an uninterrupted run of the local
/// configuration with image tag `tag`, where the Lambda role existed beforehand without policies
/// (``DayTwoTests``, ``AWSCLIV2Tests``).
func expectedWholeInventory(tag: String) -> [String: [String]] {
  var expected = expectedNetworkInventory
  expected["security-group"] = SecurityStepTests.expectedGroups
  expected["cloud-map"] = [
    "namespace unisync.internal DNS_PRIVATE", "service unisync-api-gateway",
    "service unisync-course-service", "service unisync-schedule-service",
    "service unisync-user-service",
  ]
  expected["db-subnet-group"] = ["unisync-db-subnet-group subnets=2"]
  expected["db-instance"] = ["unisync-mysql available"]
  expected["secret"] = [
    "rds!db-… (the master password)", "unisync/canvas-api-token", "unisync/cognito-config",
    // The passwords of the services' own database users (issue 17).
    "unisync/db-course-service", "unisync/db-schedule-service", "unisync/db-user-service",
    "unisync/encryption-key",
  ]
  expected["queue"] = [
    "assignment-events-queue -> assignment-events-queue-dlq after 5", "assignment-events-queue-dlq",
    "llm-analysis-queue", "submission-events-queue", "task-creation-queue",
  ]
  expected.merge(ResourceNames.guide.expectedInventory(tag: tag)) { $1 }
  // The Lambda role existed before the deployment (made by hand, with no policy): the tool uses
  // it as it is and attaches nothing to it (issue 16, settings only on what the tool made).
  let role = ResourceNames.guide.lambdaRole
  expected["role"] = (expected["role"] ?? []).map { $0.hasPrefix(role + ":") ? role + ":  + " : $0 }
  return expected
}

/// Every export the steps of the configuration at `configPath` produce.
func expectedExports(_ configPath: String, steps: [String]) throws -> Set<String> {
  let deployment = try Deployment.load(from: configPath)
  return Set(
    Catalogue.steps.filter { steps.contains($0.id) }.flatMap { $0.producedExports(for: deployment) }
  )
}

extension Workspace {
  /// Every place a secret value must never be: each aws and docker call's argv the shims logged
  /// (every `*.log` in the workspace), every file of the state directory (its private folders
  /// included), every file in the runs' `TMPDIR` (``privateTemporaryDirectory()``), and the
  /// tool's output: every run in ``transcript`` and every run started in the background; with what
  /// text each holds.
  func placesSecretsMustNotBe() -> [String: String] {
    var places: [String: String] = [:]
    for (name, data) in stateSnapshot() {
      places["state/" + name] = String(decoding: data, as: UTF8.self)
    }
    if let temporary = environment["TMPDIR"] {
      let enumerator = FileManager.default.enumerator(atPath: temporary)
      while let name = enumerator?.nextObject() as? String {
        if let data = FileManager.default.contents(atPath: temporary + "/" + name) {
          places["TMPDIR/" + name] = String(decoding: data, as: UTF8.self)
        }
      }
    }
    for (index, output) in backgroundOutputs.enumerated() {
      places["background run \(index) output"] =
        (try? String(contentsOf: output, encoding: .utf8)) ?? ""
    }
    let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    for file in files where file.hasSuffix(".log") {
      let path = directory.appendingPathComponent(file).path
      for (index, call) in loggedAWSCalls(path).enumerated() {
        places["\(file) call \(index) argv"] = (call["argv"] as? [String] ?? []).joined(
          separator: " ")
      }
    }
    for (index, run) in transcript.enumerated() {
      places["run \(index) stdout"] = run.stdout
      places["run \(index) stderr"] = run.stderr
    }
    return places
  }
}
