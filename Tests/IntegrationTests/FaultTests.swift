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

/// Faults from outside: a request AWS rejects, and AWS going away in the middle of a run.
/// (Throttling is injected over the whole deployment by `CrashSuiteTests`' crash chain.)
final class FaultTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  func testRejectedRequestStopsTheStepKeepsWhatIsDoneAndResumesAfterTheFix() async throws {
    func useZone(_ zone: String) -> (inout [String: Any]) -> Void {
      { config in
        var network = config["network"] as! [String: Any]
        var subnets = network["subnets"] as! [[String: Any]]
        subnets[3]["zone"] = zone
        network["subnets"] = subnets
        config["network"] = network
      }
    }
    let broken = try Workspace(configure: useZone("ap-northeast-2z"))
    let failed = try await broken.run(["run", "network", "--yes"])
    XCTAssertEqual(failed.status, 1, failed.summary)
    for word in [
      "step 'network'", "subnet-private-2c", "InvalidParameterValue", "ap-northeast-2z",
      "run again",
    ] {
      XCTAssertTrue(failed.stderr.contains(word), "'\(word)' missing: \(failed.stderr)")
    }
    let kept = try broken.checkpoint()
    XCTAssertEqual(kept.actions["network/vpc"]?.status, .done)
    XCTAssertEqual(kept.lastFailure?.action, "subnet-private-2c")

    // The operator fixes the zone in the same configuration file and runs again.
    var config =
      try JSONSerialization.jsonObject(
        with: Data(contentsOf: URL(fileURLWithPath: broken.configPath))) as! [String: Any]
    useZone("ap-northeast-2c")(&config)
    try JSONSerialization.data(withJSONObject: config).write(
      to: URL(fileURLWithPath: broken.configPath))
    let fixed = try await broken.run(["run", "network", "--yes"])
    XCTAssertEqual(fixed.status, 0, fixed.summary)
    XCTAssertTrue(
      fixed.stdout.contains("already done") && fixed.stdout.contains("network/vpc"), fixed.stdout)
    XCTAssertNil(try broken.checkpoint().lastFailure)
    let inventory = try await networkInventory(broken)
    XCTAssertEqual(inventory, expectedNetworkInventory)
  }

  func testAWSGoingAwayMidRunFailsClearlyAndResumesWhenBack() async throws {
    let workspace = try Workspace()
    let target = try XCTUnwrap(URL(string: workspace.endpoint)?.port)
    let proxy = try Proxy(target: target)
    defer { proxy.stop() }
    let tool = try RunningTool(
      workspace, ["run", "network", "--yes", "--jobs", "1"], endpoint: proxy.endpoint)
    // Once a few actions are recorded, the endpoint goes away.
    try await tool.waitForRecordedActions(3, in: workspace)
    try proxy.set("down")
    let (status, text) = try await tool.finish()
    XCTAssertEqual(status, 1, text)
    XCTAssertTrue(text.contains("AWS could not be reached"), text)
    let kept = try workspace.checkpoint().actions.count
    XCTAssertGreaterThanOrEqual(kept, 3)
    XCTAssertLessThan(kept, 18)

    try proxy.set("up")
    let resumed = try await workspace.run(["run", "network", "--yes"], endpoint: proxy.endpoint)
    XCTAssertEqual(resumed.status, 0, resumed.summary)
    let inventory = try await networkInventory(workspace)
    XCTAssertEqual(inventory, expectedNetworkInventory)
  }

  /// The forwarding proxy in front of the emulator (Tests/Fixtures/net/tcp-proxy.py), on a port
  /// it keeps from start to stop, so the endpoint can go away and come back at the same address
  /// without a port being freed (and maybe taken by another process) in between.
  final class Proxy {
    let process = Process()
    let port: Int
    private let lines: FileHandle

    var endpoint: String { "http://127.0.0.1:\(port)" }

    init(target: Int) throws {
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = [
        "python3", repositoryRoot.appendingPathComponent("Tests/Fixtures/net/tcp-proxy.py").path,
        String(target),
      ]
      let pipe = Pipe()
      process.standardOutput = pipe
      try process.run()
      lines = pipe.fileHandleForReading
      let ready = Self.line(lines)
      guard ready.hasPrefix("ready "), let port = Int(ready.dropFirst("ready ".count)) else {
        kill(process.processIdentifier, SIGKILL)
        throw HarnessError.missing("the test proxy did not start: '\(ready)'")
      }
      self.port = port
    }

    /// "down" (new connections are refused) or "up"; returns once the proxy says it is so.
    func set(_ wanted: String) throws {
      kill(process.processIdentifier, wanted == "down" ? SIGUSR1 : SIGUSR2)
      let answer = Self.line(lines)
      guard answer == wanted else {
        throw HarnessError.missing("the test proxy answered '\(answer)' to '\(wanted)'")
      }
    }

    /// Stops it for good (SIGKILL: a child started from a test thread may have SIGTERM blocked).
    func stop() {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }

    /// The next line the proxy prints (blocking; empty at end of file).
    private static func line(_ handle: FileHandle) -> String {
      var bytes = Data()
      while let byte = try? handle.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
        bytes += byte
      }
      return String(decoding: bytes, as: UTF8.self)
    }
  }
}
