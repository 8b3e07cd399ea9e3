import Foundation
import RunbookProcess
import XCTest

@testable import RunbookEngine

/// When `--jobs` leaves a choice, the free slot goes to the action heading the longest waits.
final class WaitPriorityTests: XCTestCase {
  /// A DB-like chain (subnet -> subnet group -> instance -> its 40-minute wait) across two steps,
  /// beside a log group and its retention: every action on the way to the long wait outranks
  /// the log group's, the longest chain counting, not the number of waits.
  func testActionsHeadingTheLongestWaitsComeFirst() {
    var subnetGroup = createAction("group", export: "GROUP_ID", arguments: [.ref("SUBNET_ID")])
    subnetGroup.after = []
    let instance = createAction("instance", export: "DB_ID", arguments: [.ref("GROUP_ID")])
    let available = Action.waitUntil(
      "instance-available", "wait", command: .aws("test", "describe", .ref("DB_ID")),
      success: ["available"], timeoutSeconds: 2400)
    let nat = createAction("nat", export: "NAT_ID", arguments: [.ref("SUBNET_ID")])
    let natAvailable = Action.waitUntil(
      "nat-available", "wait", command: .aws("test", "describe", .ref("NAT_ID")),
      success: ["available"], timeoutSeconds: 600)
    let priorities = WaitPriority.of([
      (
        "network",
        [
          createAction("subnet", export: "SUBNET_ID"), nat, natAvailable,
          createAction("log", export: nil), createAction("retention", export: nil, after: ["log"]),
        ]
      ),
      ("rds", [subnetGroup, instance, available]),
    ])
    XCTAssertEqual(priorities["rds/instance-available"], 2400)
    XCTAssertEqual(priorities["rds/instance"], 2400)
    XCTAssertEqual(priorities["rds/group"], 2400)
    XCTAssertEqual(priorities["network/subnet"], 2400, "the longer of its two chains")
    XCTAssertEqual(priorities["network/nat"], 600)
    XCTAssertEqual(priorities["network/log"], 0)
    XCTAssertEqual(priorities["network/retention"], 0)
  }

  /// With no free slot, a more urgent waiter goes first; equal ones keep their order.
  func testAFreeSlotGoesToTheMostUrgentWaiterThenInOrder() async throws {
    let slots = ActionSlots(1)
    await slots.acquire()
    actor Order {
      var names: [String] = []
      func append(_ name: String) { names.append(name) }
    }
    let order = Order()
    var tasks: [Task<Void, Never>] = []
    for (name, priority) in [("log-a", 0.0), ("db", 2400), ("log-b", 0), ("nat", 600)] {
      tasks.append(
        Task {
          await slots.acquire(priority: priority)
          await order.append(name)
          await slots.release()
        })
      // Each waits before the next arrives, so arrival order is the list's.
      while await slots.waiters < tasks.count {
        try await Task.sleep(nanoseconds: 1_000_000)
      }
    }
    await slots.release()
    for task in tasks { await task.value }
    let names = await order.names
    XCTAssertEqual(names, ["db", "nat", "log-a", "log-b"])
  }
}
