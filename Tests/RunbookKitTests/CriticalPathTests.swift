import Foundation
import XCTest

@testable import RunbookEngine

/// The chain of actions that set a run's wall time.
final class CriticalPathTests: XCTestCase {
  let zero = Date(timeIntervalSince1970: 1_000_000)

  func timing(
    _ key: String, _ start: Double, _ end: Double, needs: Set<String> = [],
    sequential: Bool = false
  ) -> ActionTiming {
    ActionTiming(
      key: key, started: zero.addingTimeInterval(start), finished: zero.addingTimeInterval(end),
      needs: needs, afterEverythingBefore: sequential)
  }

  func testTheChainFollowsTheDependencyThatFinishedLast() throws {
    let path = try XCTUnwrap(
      CriticalPath.find([
        timing("network/vpc", 0, 2),
        timing("network/subnet-a", 2, 3, needs: ["network/vpc"]),
        timing("network/nat", 3, 100, needs: ["network/subnet-a"]),
        timing("security/rds-sg", 2, 4, needs: ["network/vpc"]),
        timing("rds/subnet-group", 3, 5, needs: ["network/subnet-a", "network/vpc"]),
        timing("rds/instance", 5, 6, needs: ["rds/subnet-group", "security/rds-sg"]),
        timing("rds/instance-available", 6, 700, needs: ["rds/instance"]),
        timing("ecs/service-a", 700, 702, needs: ["network/", "rds/instance-available"]),
      ]))
    XCTAssertEqual(
      path.links.map(\.action),
      [
        "network/vpc", "network/subnet-a", "rds/subnet-group", "rds/instance",
        "rds/instance-available", "ecs/service-a",
      ])
    XCTAssertEqual(path.seconds, 702, accuracy: 0.001)
    XCTAssertEqual(path.links.last?.seconds ?? 0, 2, accuracy: 0.001)
    XCTAssertEqual(
      path.description,
      "network/vpc 2.0s -> network/subnet-a 1.0s -> rds/subnet-group 2.0s -> rds/instance 1.0s"
        + " -> rds/instance-available 11m34s -> ecs/service-a 2.0s")
  }

  func testAWholeStepDependencyTakesItsLastAction() throws {
    let path = try XCTUnwrap(
      CriticalPath.find([
        timing("network/vpc", 0, 2),
        timing("network/nat-available", 2, 90, needs: ["network/vpc"]),
        timing("ecr/push", 0, 40),
        timing("ecs/service-a", 90, 95, needs: ["network/", "ecr/"]),
      ]))
    XCTAssertEqual(
      path.links.map(\.action), ["network/vpc", "network/nat-available", "ecs/service-a"])
  }

  func testOneStepAfterAnotherWaitsForWhateverFinishedBefore() throws {
    let path = try XCTUnwrap(
      CriticalPath.find([
        timing("a/one", 0, 5),
        timing("b/two", 5, 6, sequential: true),
      ]))
    XCTAssertEqual(path.links.map(\.action), ["a/one", "b/two"])
    XCTAssertNil(CriticalPath.find([]))
  }

  func testDurationsReadAsAnOperatorWritesThem() {
    XCTAssertEqual(CriticalPath.duration(0.42), "0.4s")
    XCTAssertEqual(CriticalPath.duration(12.4), "12s")
    XCTAssertEqual(CriticalPath.duration(185), "3m05s")
    XCTAssertEqual(CriticalPath.duration(3720), "1h02m")
  }
}
