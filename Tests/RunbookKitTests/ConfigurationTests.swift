import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Loading and validating `runbooks/*.json`: every problem named by file, field and reason, all at once.
final class ConfigurationTests: XCTestCase {
  func testShippedRunbooksLoad() throws {
    for name in ["unisync-ecs.json", "local.json"] {
      let path = packageRoot.appendingPathComponent("runbooks/\(name)").path
      let deployment = try Deployment.load(from: path)
      XCTAssertEqual(deployment.name, "unisync", name)
      XCTAssertEqual(deployment.region, "ap-northeast-2", name)
      XCTAssertEqual(deployment.network.vpcCidr, "10.0.0.0/16", name)
      XCTAssertEqual(
        deployment.network.subnets.map(\.export),
        ["SUBNET_PUBLIC_2A", "SUBNET_PUBLIC_2C", "SUBNET_PRIVATE_2A", "SUBNET_PRIVATE_2C"], name)
      XCTAssertEqual(deployment.securityGroups.albPorts, [80, 443], name)
      XCTAssertEqual(deployment.securityGroups.ecsPortRange, 8080...8083, name)
      XCTAssertEqual(deployment.services.map(\.name).first, "api-gateway", name)
      XCTAssertEqual(
        deployment.baseDirectory, packageRoot.appendingPathComponent("runbooks").path, name)
    }
    let local = try localDeployment()
    XCTAssertEqual(local.registry, "127.0.0.1:5000")
    XCTAssertEqual(local.network.natWaitTimeoutSeconds, 60)
  }

  // MARK: - One problem at a time

  func testUnknownKeysAreReportedWithTheirPath() throws {
    try assertProblems(
      { config in
        config["colour"] = "blue"
        edit(&config, ["network", "vpc"]) {
          $0 = ($0 as! [String: Any]).merging(["nmae": "x"]) { a, _ in a }
        }
        edit(&config, ["network", "subnets", 1]) {
          $0 = ($0 as! [String: Any]).merging(["public": true]) { a, _ in a }
        }
      },
      [
        "colour: is not a known setting",
        "network.vpc.nmae: is not a known setting",
        "network.subnets[1].public: is not a known setting",
      ])
  }

  /// The task role's managed policies are ARNs; without the keys the role is named after the
  /// family prefix and has none.
  func testTaskRolePoliciesMustBeManagedPolicyARNs() throws {
    try assertProblems(
      { edit(&$0, ["ecs", "taskRolePolicies"]) { $0 = ["AmazonSQSFullAccess"] } },
      [
        "ecs.taskRolePolicies[0]: 'AmazonSQSFullAccess' is not an IAM managed policy ARN (arn:aws:iam::aws:policy/NAME)"
      ])
    let path = packageRoot.appendingPathComponent("runbooks/local.json").path
    var config = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        as? [String: Any])
    var ecs = try XCTUnwrap(config["ecs"] as? [String: Any])
    ecs["taskRole"] = nil
    ecs["taskRolePolicies"] = nil
    config["ecs"] = ecs
    let folder = try makeScratchFolder()
    // The task definition templates, where the configuration's relative paths look.
    try FileManager.default.createSymbolicLink(
      at: folder.appendingPathComponent("templates"),
      withDestinationURL: packageRoot.appendingPathComponent("runbooks/templates"))
    let copy = folder.appendingPathComponent("config.json")
    try JSONSerialization.data(withJSONObject: config).write(to: copy)
    let deployment = try Deployment.load(from: copy.path)
    XCTAssertEqual(deployment.ecs.taskRole, "unisync-ecs-task-role")
    XCTAssertEqual(deployment.ecs.taskRolePolicies, [])
  }

  func testInvalidCIDRs() throws {
    try assertProblems(
      { edit(&$0, ["network", "vpc", "cidr"]) { $0 = "10.0.0.0/33" } },
      ["network.vpc.cidr: '10.0.0.0/33' is not a valid IPv4 CIDR (expected a.b.c.d/n)"])
    try assertProblems(
      { edit(&$0, ["network", "vpc", "cidr"]) { $0 = "10.0.0.1/16" } },
      [
        "network.vpc.cidr: '10.0.0.1/16' is not a valid IPv4 CIDR (host bits are set or an octet is out of range)"
      ])
    try assertProblems(
      { edit(&$0, ["network", "subnets", 0, "cidr"]) { $0 = "300.0.0.0/16" } },
      [
        "network.subnets[0].cidr: '300.0.0.0/16' is not a valid IPv4 CIDR (host bits are set or an octet is out of range)"
      ])
    try assertProblems(
      { edit(&$0, ["network", "subnets", 0, "cidr"]) { $0 = "10.0.1/24" } },
      ["network.subnets[0].cidr: '10.0.1/24' is not a valid IPv4 CIDR (expected a.b.c.d/n)"])
  }

  func testCIDRArithmetic() throws {
    let vpc = try XCTUnwrap(IPv4CIDR("10.0.0.0/16"))
    XCTAssertTrue(vpc.contains(try XCTUnwrap(IPv4CIDR("10.0.255.0/24"))))
    XCTAssertFalse(vpc.contains(try XCTUnwrap(IPv4CIDR("10.1.0.0/24"))))
    XCTAssertFalse(vpc.contains(try XCTUnwrap(IPv4CIDR("10.0.0.0/8"))))
    XCTAssertTrue(try XCTUnwrap(IPv4CIDR("0.0.0.0/0")).contains(vpc))
    XCTAssertNil(IPv4CIDR("10.0.0.0/-1"))
    XCTAssertNil(IPv4CIDR("10.0.0.0/+8"))
    XCTAssertNil(IPv4CIDR("10.0.0.0"))
    XCTAssertNil(IPv4CIDR("10..0.0/16"))
  }

  /// Fargate runs only the documented cpu/memory pairs: the loader refuses another pair before
  /// `register-task-definition` would, naming the field and the sizes that cpu accepts.
  func testCPUAndMemoryMustBeAFargateSize() throws {
    try assertProblems(
      {
        edit(&$0, ["ecs", "cpu"]) { $0 = "1024" }
        edit(&$0, ["ecs", "memory"]) { $0 = "512" }
      },
      [
        "ecs.memory: '512' is not a Fargate memory size for cpu 1024: use one of 2048, 3072, 4096, 5120, 6144, 7168, 8192 (MiB)"
      ])
    try assertProblems(
      { edit(&$0, ["ecs", "cpu"]) { $0 = "300" } },
      [
        "ecs.cpu: '300' is not a Fargate CPU value: use one of 256, 512, 1024, 2048, 4096, 8192, 16384 (1024 = 1 vCPU)"
      ])
    XCTAssertNil(FargateTaskSize.problem(cpu: "0.5 vCPU", memory: "1 GB"))
    XCTAssertNil(FargateTaskSize.problem(cpu: "8192", memory: "20480"))
    XCTAssertNotNil(FargateTaskSize.problem(cpu: "8192", memory: "17408"))
  }

  func testSubnetOutsideTheVPC() throws {
    try assertProblems(
      { edit(&$0, ["network", "subnets", 3, "cidr"]) { $0 = "10.1.12.0/24" } },
      ["network.subnets[3].cidr: 10.1.12.0/24 is not inside the VPC's 10.0.0.0/16"])
  }

  func testOverlappingSubnets() throws {
    try assertProblems(
      { edit(&$0, ["network", "subnets", 2, "cidr"]) { $0 = "10.0.0.0/22" } },
      ["network.subnets[2].cidr: 10.0.0.0/22 overlaps public-2a's 10.0.1.0/24"],
      also: ["network.subnets[2].cidr: 10.0.0.0/22 overlaps public-2c's 10.0.2.0/24"])
  }

  func testPortsOutOfRange() throws {
    try assertProblems(
      { edit(&$0, ["securityGroups", "alb", "ports"]) { $0 = [80, 70000] } },
      ["securityGroups.alb.ports[1]: 70000 is out of range (1-65535)"])
    try assertProblems(
      { edit(&$0, ["services", 0, "port"]) { $0 = 0 } },
      ["services[0].port: 0 is out of range (1-65535)"])
    try assertProblems(
      { edit(&$0, ["securityGroups", "ecs", "toPort"]) { $0 = 8000 } },
      ["securityGroups.ecs.toPort: 8000 is below fromPort 8080"])
  }

  func testWrongTypes() throws {
    try assertProblems(
      { edit(&$0, ["rds", "allocatedStorageGB"]) { $0 = "20" } },
      ["rds.allocatedStorageGB: must be a whole number, not a string"])
    try assertProblems(
      { edit(&$0, ["network", "vpc", "name"]) { $0 = 5 } },
      ["network.vpc.name: must be a string, not a number"])
    try assertProblems(
      { edit(&$0, ["rds", "multiAZ"]) { $0 = "yes" } },
      ["rds.multiAZ: must be true or false, not a string"])
    try assertProblems(
      { edit(&$0, ["securityGroups", "alb", "ports"]) { $0 = [80, "443"] } },
      ["securityGroups.alb.ports[1]: must be a port number, not a string"])
    try assertProblems(
      { edit(&$0, ["network", "internetGateway"]) { $0 = ["igw"] } },
      ["network.internetGateway: must be a string, not an array"])
    // Unreadable subnets are reported once, not again by every check that needs them.
    try assertProblems(
      { edit(&$0, ["network", "subnets"]) { $0 = ["id": "x"] } },
      ["network.subnets: must be an array, not an object"])
    try assertProblems(
      { edit(&$0, ["ecs", "desiredCount"]) { $0 = 1.5 } },
      ["ecs.desiredCount: must be a whole number, not a number"])
  }

  func testMissingRequiredField() throws {
    try assertProblems(
      {
        edit(&$0, ["network"]) {
          $0 = ($0 as! [String: Any]).filter { $0.key != "internetGateway" }
        }
      },
      ["network.internetGateway: is required"])
  }

  func testBadRegion() throws {
    try assertProblems(
      { $0["region"] = "Seoul" },
      // Reported once: the zones are not checked against a region that does not exist.
      ["region: 'Seoul' is not an AWS region name (like ap-northeast-2)"])
  }

  func testZoneNotInRegion() throws {
    try assertProblems(
      { edit(&$0, ["network", "subnets", 2, "zone"]) { $0 = "us-east-1a" } },
      ["network.subnets[2].zone: 'us-east-1a' is not an availability zone of ap-northeast-2"])
    try assertProblems(
      { edit(&$0, ["network", "subnets", 2, "zone"]) { $0 = "ap-northeast-21" } },
      ["network.subnets[2].zone: 'ap-northeast-21' is not an availability zone of ap-northeast-2"])
  }

  func testNATSubnetMustBePublic() throws {
    try assertProblems(
      { edit(&$0, ["network", "natGateway", "subnet"]) { $0 = "private-2a" } },
      ["network.natGateway.subnet: 'private-2a' is not a public subnet"])
    try assertProblems(
      { edit(&$0, ["network", "natGateway", "subnet"]) { $0 = "public-9z" } },
      ["network.natGateway.subnet: 'public-9z' is not a subnet id"])
  }

  func testInvalidJSONNamesTheFile() throws {
    let path = try makeScratchFolder().appendingPathComponent("broken.json").path
    writeFile(path, contents: Data(#"{"deployment": "unisync", "region": }"#.utf8))
    let error = assertThrowsNow(ConfigurationError.self) { try Deployment.load(from: path) }
    XCTAssertEqual(error?.file, path)
    XCTAssertEqual(error?.problems.count, 1)
    XCTAssertTrue(
      error?.problems.first?.hasPrefix("is not valid JSON (") ?? false,
      "\(String(describing: error))")
    XCTAssertTrue(error?.description.hasPrefix("\(path): is not valid JSON") ?? false)
  }

  func testMissingFileNamesTheFile() {
    let error = assertThrowsNow(ConfigurationError.self) {
      try Deployment.load(from: "/nonexistent/runbook.json")
    }
    XCTAssertEqual(
      error?.description, "/nonexistent/runbook.json: cannot be read (missing or not readable)")
  }

  func testTopLevelMustBeAnObject() throws {
    let error = assertThrowsNow(ConfigurationError.self) {
      try Deployment.parse(.array([]), file: "x.json", baseDirectory: "/")
    }
    XCTAssertEqual(error?.problems.first, "(top level): must be an object, not an array")
  }

  // MARK: - Several at once

  func testEveryProblemIsReportedAtOnce() throws {
    try assertProblems(
      { config in
        config["region"] = "ap-northeast-2"
        config["extra"] = 1
        edit(&config, ["network", "vpc", "cidr"]) { $0 = "10.0.0.1/16" }
        edit(&config, ["securityGroups", "rds", "port"]) { $0 = 99999 }
        edit(&config, ["network", "natGateway", "subnet"]) { $0 = "private-2c" }
        edit(&config, ["sqs", "deadLetter", "source"]) { $0 = "nope-queue" }
      },
      [
        "extra: is not a known setting",
        "network.vpc.cidr: '10.0.0.1/16' is not a valid IPv4 CIDR (host bits are set or an octet is out of range)",
        "securityGroups.rds.port: 99999 is out of range (1-65535)",
        "network.natGateway.subnet: 'private-2c' is not a public subnet",
        "sqs.deadLetter.source: 'nope-queue' is not one of sqs.queues",
      ])
  }

  // MARK: - Helpers

  /// Writes an edited copy of `local.json`, loads it, and checks that exactly the `expected` and
  /// `also` problems are reported, each as `FILE: field: reason`.
  func assertProblems(
    _ change: (inout [String: Any]) -> Void, _ expected: [String], also: [String] = [],
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let path = try editedConfiguration(change)
    guard
      let error = assertThrowsNow(
        ConfigurationError.self, file: file, line: line, { try Deployment.load(from: path) })
    else { return }
    XCTAssertEqual(error.file, path, file: file, line: line)
    let lines = error.description.split(separator: "\n").map(String.init)
    XCTAssertEqual(
      Set(lines), Set((expected + also).map { "\(path): \($0)" }), file: file, line: line)
    XCTAssertEqual(lines.count, expected.count + also.count, "\(lines)", file: file, line: line)
  }

  /// A copy of the local configuration with `change` made, in a scratch folder; its path.
  func editedConfiguration(_ change: (inout [String: Any]) -> Void) throws -> String {
    var config =
      try JSONSerialization.jsonObject(
        with: try XCTUnwrap(contents(of: localConfigurationPath))) as! [String: Any]
    // The copy lives elsewhere: its task definition templates stay those of runbooks/.
    let runbooks = URL(fileURLWithPath: localConfigurationPath).deletingLastPathComponent()
    config["services"] = (config["services"] as? [[String: Any]])?.map { service in
      var service = service
      if let template = service["taskDefinition"] as? String {
        service["taskDefinition"] = runbooks.appendingPathComponent(template).path
      }
      return service
    }
    change(&config)
    let path = try makeScratchFolder().appendingPathComponent("edited.json").path
    writeFile(path, contents: try JSONSerialization.data(withJSONObject: config))
    return path
  }
}

/// Replaces the value at `path` (object keys and array indices) inside a JSON dictionary.
func edit(_ object: inout [String: Any], _ path: [AnyHashable], _ change: (inout Any) -> Void) {
  func update(_ value: inout Any, _ rest: ArraySlice<AnyHashable>) {
    guard let key = rest.first else { return change(&value) }
    if let name = key as? String, var dictionary = value as? [String: Any] {
      var child: Any = dictionary[name] ?? NSNull()
      update(&child, rest.dropFirst())
      dictionary[name] = child
      value = dictionary
    } else if let index = key as? Int, var array = value as? [Any] {
      update(&array[index], rest.dropFirst())
      value = array
    } else {
      preconditionFailure("no \(key) in \(value)")
    }
  }
  var root: Any = object
  update(&root, path[...])
  object = root as! [String: Any]
}
