import Foundation
import XCTest

/// A run schedules actions, not steps (docs/architecture.md "Scheduling"): the DB instance's
/// create does not wait for the network step's NAT gateway and route tables.
final class SchedulingTests: XCTestCase {
  /// The strict layer keeps the NAT gateway `pending` with its clock frozen: the run can only get
  /// to the DB instance's create if that create does not wait for the gateway. Then the clock
  /// moves on, the gateway becomes available and the run finishes.
  func testTheDBInstanceIsCreatedWhileTheNATGatewayIsStillPending() async throws {
    let strict = try StrictLayer.forThisProcess()
    try strict.reset()
    try strict.configure(["nat-pending"], frozen: true)
    defer { try? strict.reset() }
    let workspace = try Workspace(strict: true)
    let log = workspace.directory.appendingPathComponent("aws-calls.log").path

    let tool = try RunningTool(
      workspace, ["run", "network", "security", "rds", "--yes"], endpoint: strict.url,
      environment: ["RUNBOOK_AWS_LOG": log])
    func operations() -> [String] {
      loggedAWSCalls(log).map { (($0["argv"] as? [String]) ?? []).prefix(2).joined(separator: " ") }
    }
    // Both run side by side, in either order: the DB instance's create and the gateway's wait
    // (whose clock stays frozen, so the gateway is pending until `advance` below).
    let deadline = Date().addingTimeInterval(300)
    while !(operations().contains("rds create-db-instance")
      && operations().contains("ec2 describe-nat-gateways")), tool.process.isRunning,
      Date() < deadline
    {
      try await Task.sleep(nanoseconds: 200_000_000)
    }
    let beforeTheGateway = operations()
    XCTAssertTrue(
      beforeTheGateway.contains("rds create-db-instance"),
      "no DB instance while the NAT gateway was pending: \(beforeTheGateway)")
    XCTAssertTrue(beforeTheGateway.contains("ec2 describe-nat-gateways"), "\(beforeTheGateway)")
    let routes = loggedAWSCalls(log).filter {
      (($0["argv"] as? [String]) ?? []).starts(with: ["ec2", "create-route"])
        && (($0["argv"] as? [String]) ?? []).contains("--nat-gateway-id")
    }
    XCTAssertEqual(routes.count, 0, "the private route went to a pending NAT gateway")

    try strict.advance(600)
    let (status, text) = try await tool.finish()
    XCTAssertEqual(status, 0, text)
    XCTAssertTrue(operations().contains("ec2 create-route"))
    let path = try XCTUnwrap(
      text.split(separator: "\n").first { $0.hasPrefix("critical path: ") }, text)
    // Which chain ended last depends on when the freed --jobs slots went to what (the public
    // route tables queue behind the waits on a slow machine): the line names a chain of this
    // run's actions that begins in the network step, which everything else needs.
    let links = path.dropFirst("critical path: ".count).components(separatedBy: " -> ")
    XCTAssertTrue(links.first?.hasPrefix("network/") == true, String(path))
    XCTAssertTrue(
      links.allSatisfy { link in
        ["network/", "security/", "rds/"].contains { link.hasPrefix($0) }
          && link.range(of: #" [0-9][0-9hm.]*s$"#, options: .regularExpression) != nil
      }, String(path))
  }
}
