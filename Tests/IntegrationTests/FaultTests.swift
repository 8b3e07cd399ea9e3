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
    let port = try freePort()
    var proxy = try startProxy(listen: port, target: target)
    let endpoint = "http://127.0.0.1:\(port)"
    let tool = try RunningTool(
      workspace, ["run", "network", "--yes", "--jobs", "1"], endpoint: endpoint)
    // Once a few actions are recorded, the endpoint goes away.
    try await tool.waitForRecordedActions(3, in: workspace)
    stop(proxy)
    let (status, text) = try await tool.finish()
    XCTAssertEqual(status, 1, text)
    XCTAssertTrue(text.contains("AWS could not be reached"), text)
    let kept = try workspace.checkpoint().actions.count
    XCTAssertGreaterThanOrEqual(kept, 3)
    XCTAssertLessThan(kept, 18)

    proxy = try startProxy(listen: port, target: target)
    defer { stop(proxy) }
    let resumed = try await workspace.run(["run", "network", "--yes"], endpoint: endpoint)
    XCTAssertEqual(resumed.status, 0, resumed.summary)
    let inventory = try await networkInventory(workspace)
    XCTAssertEqual(inventory, expectedNetworkInventory)
  }

  /// Stops the proxy for good (SIGKILL: a child started from a test thread may have SIGTERM blocked).
  func stop(_ proxy: Process) {
    kill(proxy.processIdentifier, SIGKILL)
    proxy.waitUntilExit()
  }

  /// Starts the forwarding proxy and waits until it listens.
  func startProxy(listen: Int, target: Int) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
      "python3", repositoryRoot.appendingPathComponent("Tests/Fixtures/net/tcp-proxy.py").path,
      String(listen), String(target),
    ]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let line = pipe.fileHandleForReading.availableData
    guard String(decoding: line, as: UTF8.self).contains("ready") else {
      process.terminate()
      throw HarnessError.missing("the test proxy did not start")
    }
    return process
  }

  /// A TCP port on 127.0.0.1 that nothing listens on right now.
  func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
      }
    }
    guard bound else { throw HarnessError.missing("cannot find a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
  }
}
