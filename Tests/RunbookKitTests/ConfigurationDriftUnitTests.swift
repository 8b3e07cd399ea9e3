import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// The command a done write keeps, and the comparison with today's: only the configuration
/// changes it, never the command line's requests, the endpoint or the exports of later runs.
final class ConfigurationDriftUnitTests: XCTestCase {
  func testEveryWriteOfTheGuideKeepsTheSameCommandWhateverTheRunAsksBeyondTheFile() throws {
    let fixture = try EngineFixture(test: self)
    let steps = Catalogue.steps.filter(\.runsByDefault)
    func commands(_ configure: (inout Deployment) -> Void, endpoint: String?) -> [String: String] {
      var deployment = fixture.deployment
      configure(&deployment)
      let engine = Engine(
        deployment: deployment, state: fixture.state, runner: fixture.runner,
        reporter: fixture.reporter, prompter: nil,
        aws: AWSSettings(region: deployment.region, endpointURL: endpoint, profile: nil),
        options: RunOptions(assumeYes: true))
      var kept: [String: String] = [:]
      for step in steps {
        for action in step.actions(for: deployment) {
          if let command = engine.recordedCommand(action) {
            kept["\(step.id)/\(action.name)"] = command
          }
        }
      }
      return kept
    }
    let plain = commands({ _ in }, endpoint: nil)
    XCTAssertGreaterThan(plain.count, 40, "the guide's writes")
    let asked = commands(
      { deployment in
        deployment.imageTag = "v9"
        deployment.request.services = ["api-gateway"]
        deployment.request.skipFinalSnapshot = true
      }, endpoint: "http://127.0.0.1:1")
    XCTAssertEqual(asked, plain)
    for (action, command) in plain {
      XCTAssertFalse(command.contains("--region"), "\(action): \(command)")
      XCTAssertFalse(command.contains("/scratch/run-"), "\(action): a run's own folder: \(command)")
    }
    XCTAssertNotEqual(
      commands({ $0.network.vpcCidr = "10.0.0.0/17" }, endpoint: nil)["network/vpc"],
      plain["network/vpc"])
  }

  func testTheDifferenceIsCutToTheWordsThatDiffer() {
    let drift = ConfigurationDrift(
      step: "network", action: "vpc",
      recorded: "aws ec2 create-vpc --cidr-block 10.0.0.0/16 --query Vpc.VpcId",
      today: "aws ec2 create-vpc --cidr-block 10.0.0.0/17 --query Vpc.VpcId")
    XCTAssertEqual(drift.difference.recorded, "… --cidr-block 10.0.0.0/16 …")
    XCTAssertEqual(drift.difference.today, "… --cidr-block 10.0.0.0/17 …")
    let longer = ConfigurationDrift(
      step: "s", action: "a", recorded: "aws x create --name a",
      today: "aws x create --name a --b c")
    XCTAssertEqual(longer.difference.recorded, "… a")
    XCTAssertEqual(longer.difference.today, "… a --b c")
  }

  /// A checkpoint of an earlier version has no commands: nothing is compared, nothing reported.
  func testRecordsWithoutACommandAreNotCompared() throws {
    let fixture = try EngineFixture(test: self)
    let steps = Catalogue.steps.filter { $0.id == "network" }
    let engine = fixture.engine(steps)
    var checkpoint = Checkpoint(
      deployment: fixture.deployment.name, region: fixture.deployment.region)
    checkpoint.actions["network/vpc"] = ActionRecord(
      status: .done, outcome: .created, value: "vpc-1", export: "VPC_ID")
    XCTAssertEqual(engine.configurationDrift(steps, checkpoint: checkpoint), [])
    checkpoint.actions["network/vpc"]?.command = "aws ec2 create-vpc --cidr-block 10.9.0.0/16"
    XCTAssertEqual(
      engine.configurationDrift(steps, checkpoint: checkpoint).map(\.action), ["vpc"])
  }
}
