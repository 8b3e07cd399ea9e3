import Foundation
import RunbookEngine
import RunbookState
import XCTest

@testable import UniSyncRunbook

/// `destroy` of the private DNS namespace after runs that did not finish it.
final class ServiceDiscoveryTeardownTests: XCTestCase {
  /// The ecs step's teardown of the namespace alone.
  struct Namespace: Step {
    let id = "ecs"
    let section = "6"
    let title = "namespace"
    func actions(for deployment: Deployment) -> [Action] { [] }
    func teardown(for deployment: Deployment) -> [Action] {
      [ServiceDiscovery.deleteNamespace(deployment, after: [])]
    }
  }

  /// A run that stopped between the namespace's create and the wait for it (another action
  /// failed, and the run started nothing more) recorded only the create's operation: destroy
  /// reads the namespace's id from that operation, then deletes the namespace.
  func testANamespaceWhoseWaitNeverRanIsDeletedByTheIdItsOperationNames() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(
      "aws", "servicediscovery", "get-operation", "--operation-id", "op-create-1",
      reply: .ok("SUCCESS\tns-abc123\tNone\n"))
    fixture.runner.on("aws", "servicediscovery", "list-services", reply: .ok(""))
    fixture.runner.on(
      "aws", "servicediscovery", "delete-namespace", reply: .ok("op-delete-1\n"))
    fixture.runner.on(
      "aws", "servicediscovery", "get-operation", "--operation-id", "op-delete-1",
      reply: .ok("SUCCESS\tns-abc123\tNone\n"))
    try fixture.seedCheckpoint { checkpoint in
      checkpoint.exports = ["NAMESPACE_CREATION": "op-create-1"]
      checkpoint.actions = [
        "ecs/discovery-namespace": ActionRecord(
          status: .done, outcome: .created, value: "op-create-1", export: "NAMESPACE_CREATION")
      ]
    }
    let teardown = TeardownStep(Namespace())
    let summary = try await fixture.engine([teardown]).run([teardown])
    XCTAssertEqual(summary.outcomes["ecs/delete-discovery-namespace"], .deleted)
    let deletes = fixture.runner.calls("aws", "servicediscovery", "delete-namespace")
    XCTAssertEqual(deletes.count, 1)
    XCTAssertEqual(
      deletes.first?.argv.firstIndex(of: "--id").map { deletes.first?.argv[$0 + 1] }, "ns-abc123")
    let listed = fixture.runner.calls("aws", "servicediscovery", "list-services")
    XCTAssertTrue(listed.first?.argv.contains { $0.contains("ns-abc123") } ?? false, "\(listed)")
  }
}
