import Foundation
import XCTest

@testable import RunbookCLI
@testable import UniSyncRunbook

/// The engine versions' support dates (`runbooks/rds-mysql-support.json`) and what they cost in
/// the estimate `plan` prints.
final class EngineSupportTests: XCTestCase {
  /// The deployment of `runbooks/local.json`, reading the tables beside it, with `version`.
  private func deployment(version: String) throws -> Deployment {
    var deployment = try localDeployment()
    deployment.baseDirectory = packageRoot.appendingPathComponent("runbooks").path
    deployment.rds.engineVersion = version
    return deployment
  }

  private func day(_ text: String) throws -> Date {
    try XCTUnwrap(EngineSupportCalendar.day(text), text)
  }

  func testTheShippedTableGivesEachMajorVersionItsDatesAndSource() throws {
    let calendar = try XCTUnwrap(EngineSupportCalendar.load(for: deployment(version: "8.4")))
    XCTAssertTrue(
      calendar.source.hasPrefix("https://docs.aws.amazon.com/AmazonRDS/"), calendar.source)
    XCTAssertEqual(calendar.version("8.0.39")?.endOfStandardSupport, "2026-07-31")
    XCTAssertEqual(calendar.version("8.0")?.endOfExtendedSupport, "2029-07-31")
    XCTAssertEqual(calendar.version("8.4.3")?.major, "8.4")
    XCTAssertNil(calendar.version("9.1"))
    XCTAssertNil(calendar.version("8"))
  }

  func testAVersionStandsInStandardThenExtendedSupportByTheDay() throws {
    let calendar = try XCTUnwrap(EngineSupportCalendar.load(for: deployment(version: "8.4")))
    XCTAssertEqual(
      calendar.standing("8.0", on: try day("2026-07-31")), .standard(until: "2026-07-31"))
    XCTAssertEqual(
      calendar.standing("8.0.39", on: try day("2026-08-01")),
      .extended(standardEnded: "2026-07-31", year: 1, until: "2029-07-31"))
    XCTAssertEqual(
      calendar.standing("8.0", on: try day("2027-08-01")),
      .extended(standardEnded: "2026-07-31", year: 2, until: "2029-07-31"))
    XCTAssertEqual(
      calendar.standing("8.0", on: try day("2029-08-01")),
      .unsupported(extendedEnded: "2029-07-31"))
    XCTAssertEqual(
      calendar.standing("8.4", on: try day("2026-12-03")), .standard(until: "2029-07-31"))
    XCTAssertEqual(calendar.standing("9.1", on: try day("2026-12-03")), .unknown)
  }

  /// 8.0 after 2026-07-31: 2 vCPUs (db.t3.micro) x 2 (Multi-AZ) x 0.10 USD x 730 h = 292.00 a
  /// month in the first year; 8.4 adds nothing.
  func testTheEstimateAddsExtendedSupportOnlyForAVersionPastStandardSupport() throws {
    let old = try deployment(version: "8.0")
    let prices = try XCTUnwrap(CostEstimate.load(for: old))
    let calendar = EngineSupportCalendar.load(for: old)
    let past = CostEstimate(
      prices: prices, deployment: old, steps: ["rds"], support: calendar,
      today: try day("2026-12-03")
    ).render()
    let line = past.split(separator: "\n").first { $0.contains("Extended Support (") }
    XCTAssertEqual(
      line.map { $0.split(separator: " ", omittingEmptySubsequences: true).last },
      "292.00", past)
    XCTAssertTrue(line?.contains("mysql 8.0 past 2026-07-31") == true, past)
    XCTAssertTrue(past.contains("mysql 8.4 (rds.engineVersion) is in standard support"), past)

    let before = CostEstimate(
      prices: prices, deployment: old, steps: ["rds"], support: calendar,
      today: try day("2026-07-31")
    ).render()
    XCTAssertFalse(before.contains("Extended Support"), before)
    let current = try deployment(version: "8.4")
    let supported = CostEstimate(
      prices: prices, deployment: current, steps: ["rds"], support: calendar,
      today: try day("2026-12-03")
    ).render()
    XCTAssertFalse(supported.contains("Extended Support"), supported)
    // In the third year the price doubles.
    let third = CostEstimate(
      prices: prices, deployment: old, steps: ["rds"], support: calendar,
      today: try day("2028-09-01")
    ).render()
    XCTAssertTrue(
      third.split(separator: "\n").contains {
        $0.contains("Extended Support (") && $0.hasSuffix("584.00")
      },
      third)
  }
}
