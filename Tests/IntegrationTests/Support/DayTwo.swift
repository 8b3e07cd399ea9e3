import Foundation
import RunbookProcess
import RunbookAWS
import RunbookState
import RunbookEngine
import UniSyncRunbook
import RunbookCLI
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// A stand-in for the application's health endpoint on 127.0.0.1 (Tests/Fixtures/net/health-server.py).
final class HealthServer {
  enum Mode: String { case up, down, hang }

  let process = Process()
  let port: Int
  let log: String

  init(_ mode: Mode, in directory: URL) throws {
    log = directory.appendingPathComponent("health-\(mode.rawValue).log").path
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
      "python3", repositoryRoot.appendingPathComponent("Tests/Fixtures/net/health-server.py").path,
      mode.rawValue,
    ]
    process.environment = ProcessInfo.processInfo.environment.merging(["HEALTH_SERVER_LOG": log]) {
      $1
    }
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    var line = Data()
    while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty,
      byte != Data("\n".utf8)
    {
      line += byte
    }
    guard let port = Int(String(decoding: line, as: UTF8.self)) else {
      kill(process.processIdentifier, SIGKILL)
      throw HarnessError.missing("the health server did not say its port")
    }
    self.port = port
  }

  var url: String { "http://127.0.0.1:\(port)/actuator/health" }

  /// The paths the server was asked for.
  var requests: [String] {
    ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(
      String.init)
  }

  deinit {
    // SIGKILL: the test process may run with SIGTERM blocked, and a child inherits that.
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
  }
}

extension Workspace {
  /// Rewrites the configuration file: `edit` changes it as a JSON dictionary.
  func editConfiguration(_ edit: (inout [String: Any]) -> Void) throws {
    var config =
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath)))
      as! [String: Any]
    edit(&config)
    try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
      .write(to: URL(fileURLWithPath: configPath))
  }
}

/// The emulator's ECR token (`aws ecr get-login-password`): the test registry's password.
func emulatorRegistryPassword(_ endpoint: String) async throws -> String {
  let output = try await ProcessRunner().run(
    Invocation(
      executable: "aws",
      arguments: [
        "ecr", "get-login-password", "--region", "ap-northeast-2", "--endpoint-url", endpoint,
      ],
      environment: [
        "PATH": Workspace.shimmedPath, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
      ]))
  guard output.succeeded else {
    throw HarnessError.missing("aws ecr get-login-password failed: \(output.stderrText)")
  }
  return output.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
}

extension RunningTool {
  /// What the tool has written so far.
  var text: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

  /// Waits until `needle` appears `count` times in the output; false after `timeout` seconds.
  func wait(for needle: String, count: Int = 1, timeout: Double) async -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end, process.isRunning {
      if text.components(separatedBy: needle).count > count { return true }
      try? await Task.sleep(nanoseconds: 200_000_000)
    }
    return text.components(separatedBy: needle).count > count
  }

  /// Sends SIGINT (Ctrl-C); returns the exit status and everything the tool wrote.
  func interrupt() async throws -> (status: Int32, text: String) {
    kill(process.processIdentifier, SIGINT)
    return try await finish()
  }
}
