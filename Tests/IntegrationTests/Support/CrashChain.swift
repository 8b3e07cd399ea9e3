import Foundation
import XCTest

/// What a crash chain did: how many runs were killed, and the run that finished.
struct CrashChain {
  var kills: Int
  var finished: ToolRun?
}

/// Runs `arguments`, killing the tool right after every write (see
/// ``Workspace/runKilledAfterEveryWrite(_:environment:limit:)``).
func runKillingAfterEachWrite(
  _ workspace: Workspace, _ arguments: [String], environment: [String: String] = [:],
  limit: Int = 40
) async throws -> CrashChain {
  let chain = try await workspace.runKilledAfterEveryWrite(
    arguments, environment: environment, limit: limit)
  return CrashChain(kills: chain.kills, finished: chain.last)
}

/// The aws calls the shim logged (RUNBOOK_AWS_LOG), with their argv.
func loggedArgv(_ path: String) -> [(argv: [String], write: Bool, exit: Int, stdin: String?)] {
  loggedAWSCalls(path).map {
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
