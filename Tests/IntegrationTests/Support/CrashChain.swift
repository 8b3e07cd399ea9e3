import Foundation
import XCTest

/// What a crash chain did: how many runs were killed, and the run that finished.
struct CrashChain {
  var kills: Int
  var finished: ToolRun?
}

/// Runs `arguments` with `--jobs 1`, killing the tool right after its first write call returned
/// (the aws shim's RUNBOOK_CRASH_AT=1, a fresh counter each time), until a run is not killed.
/// Every write action of the steps is interrupted once, before the tool could record it.
func runKillingAfterEachWrite(
  _ workspace: Workspace, _ arguments: [String], environment: [String: String] = [:],
  limit: Int = 40
) async throws -> CrashChain {
  let counter = workspace.directory.appendingPathComponent("crash-counter").path
  var chain = CrashChain(kills: 0, finished: nil)
  for _ in 0..<limit {
    try Data().write(to: URL(fileURLWithPath: counter))
    var variables = environment
    variables["RUNBOOK_CRASH_AT"] = "1"
    variables["RUNBOOK_CRASH_COUNTER"] = counter
    let run = try await workspace.run(arguments + ["--jobs", "1"], environment: variables)
    guard run.signaled else {
      chain.finished = run
      return chain
    }
    XCTAssertEqual(run.status, SIGKILL, run.summary)
    chain.kills += 1
  }
  return chain
}

/// The aws calls the shim logged (RUNBOOK_AWS_LOG), with their argv.
func loggedArgv(_ path: String) -> [(argv: [String], write: Bool, exit: Int, stdin: String?)] {
  NetworkStepTests.loggedCalls(path).map {
    (
      $0["argv"] as? [String] ?? [], $0["write"] as? Bool ?? false, $0["exit"] as? Int ?? -1,
      $0["stdin"] as? String
    )
  }
}

/// Calls of one aws operation (`rds create-db-instance`) in a shim log.
func calls(_ operation: String, in path: String) -> [(
  argv: [String], write: Bool, exit: Int, stdin: String?
)] {
  let words = operation.split(separator: " ").map(String.init)
  return loggedArgv(path).filter { Array($0.argv.prefix(words.count)) == words }
}
