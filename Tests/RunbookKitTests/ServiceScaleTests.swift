import Foundation
import XCTest

@testable import RunbookEngine
@testable import UniSyncRunbook

/// Four times the services (issue 19, §4): the local configuration with 16 services, generated as
/// `make bench SERVICES=16` does (scripts/bench_services.py): its own four, then services of the
/// database template with names `extra-NN-service`, ports 8080 + index, databases of their own.
final class ServiceScaleTests: XCTestCase {
  static let count = 16

  /// The configuration's JSON with `count` services and the ECS port range `toPort`.
  func configuration(count: Int = count, toPort: Int? = nil) throws -> [String: Any] {
    var config =
      try JSONSerialization.jsonObject(
        with: try XCTUnwrap(FileManager.default.contents(atPath: localConfigurationPath)))
      as! [String: Any]
    let runbooks = URL(fileURLWithPath: localConfigurationPath).deletingLastPathComponent()
    var services = (config["services"] as! [[String: Any]]).map { service in
      var service = service
      for key in ["taskDefinition", "buildContext"] {
        if let path = service[key] as? String {
          service[key] = runbooks.appendingPathComponent(path).standardized.path
        }
      }
      return service
    }
    var rds = config["rds"] as! [String: Any]
    var databases = rds["databases"] as! [String]
    let model = services[1]
    for index in services.count..<count {
      var service = model
      let number = String(format: "%02d", index + 1)
      service["name"] = "extra-\(number)-service"
      service["port"] = 8080 + index
      service["database"] = "extra_\(number)_db"
      databases.append("extra_\(number)_db")
      services.append(service)
    }
    config["services"] = services
    rds["databases"] = databases
    config["rds"] = rds
    edit(&config, ["securityGroups", "ecs", "toPort"]) { $0 = toPort ?? 8080 + count - 1 }
    return config
  }

  func write(_ config: [String: Any]) throws -> String {
    let path = try makeScratchFolder().appendingPathComponent("services.json").path
    writeFile(path, contents: try JSONSerialization.data(withJSONObject: config))
    return path
  }

  func testSixteenServicesLoadAndPlanWithDistinctNamesPortsAndResources() async throws {
    let deployment = try Deployment.load(from: try write(try configuration()))
    XCTAssertEqual(deployment.services.count, Self.count)
    let names = deployment.services.map(\.name)
    let ports = deployment.services.map(\.port)
    XCTAssertEqual(Set(names).count, Self.count, "\(names)")
    XCTAssertEqual(ports, Array(8080..<(8080 + Self.count)))

    // Every step of a `run` plans, every action name unique in its step, every export made once.
    var fixture = try EngineFixture(test: self)
    fixture.deployment = deployment
    let steps = Catalogue.steps.filter(\.runsByDefault)
    let planned = try fixture.engine(steps).plan(steps, checkpoint: nil)
    var producers: [String: String] = [:]
    for step in planned {
      let actions = step.actions.map(\.name)
      XCTAssertEqual(Set(actions).count, actions.count, "\(step.id): duplicate action names")
      for action in step.actions {
        guard let export = action.export else { continue }
        XCTAssertNil(producers[export], "\(export) made by \(step.id)/\(action.name) and another")
        producers[export] = "\(step.id)/\(action.name)"
      }
    }
    func commands(_ step: String, _ prefix: String) -> [String] {
      planned.first { $0.id == step }?.actions.filter { $0.name.hasPrefix(prefix) }.map(\.command)
        ?? []
    }

    // One ECR repository, log group, task definition family, Cloud Map name and ECS service each.
    for (prefix, step, count) in [
      ("repository-", "ecr", Self.count), ("push-latest-", "ecr", Self.count),
      ("service-revision-", "ecs", Self.count), ("discovery-service-", "ecs", Self.count),
      ("db-password-", "secrets", Self.count - 1),
    ] {
      let found = commands(step, prefix)
      XCTAssertEqual(found.count, count, "\(step)/\(prefix)*")
      XCTAssertEqual(Set(found).count, found.count, "\(step)/\(prefix)*: the same command twice")
    }
    // (The database task's own family, unisync-db-setup, aside.)
    let families = commands("ecs", "task-definition-").filter {
      !$0.contains("list-task") && !$0.contains("unisync-db-setup")
    }
    XCTAssertEqual(families.count, Self.count)
    for (index, service) in deployment.services.enumerated() {
      let create = try XCTUnwrap(commands("ecs", "service-\(service.name)").first)
      // Service Connect's alias: the service's own name and port.
      XCTAssertTrue(
        create.contains(
          #""clientAliases":[{"port":\#(8080 + index),"dnsName":"unisync-\#(service.name)"}]"#),
        create)
      XCTAssertEqual(
        create.contains("--load-balancers"), index == 0, "only the gateway is behind the ALB")
      let definition = try XCTUnwrap(commands("ecs", "task-definition-\(service.name)").first)
      XCTAssertTrue(definition.contains(#""containerPort": \#(8080 + index)"#), definition)
    }

    // The ECS group admits every service's port, from the ALB and from itself: one rule each.
    let rules = commands("security", "ecs-").filter { $0.contains("authorize") }
    XCTAssertEqual(rules.count, 2, "\(rules)")
    for rule in rules {
      XCTAssertTrue(rule.contains(#""FromPort":8080,"ToPort":8095"#), rule)
    }
    // One target group and one listener (only the gateway is behind the ALB): no listener
    // rules, so neither priorities nor the ALB's rule limit grow with the services.
    let ecs = try XCTUnwrap(planned.first { $0.id == "ecs" })
    XCTAssertEqual(ecs.actions.filter { $0.command.contains("create-target-group") }.count, 1)
    XCTAssertEqual(ecs.actions.filter { $0.command.contains("create-listener") }.count, 1)
    XCTAssertFalse(ecs.actions.contains { $0.command.contains("create-rule") })
    // Every database user is distinct and within MySQL's 32 characters.
    let users = deployment.services.compactMap { service in
      service.database.map { _ in DatabaseSetup.user(deployment, service) }
    }
    XCTAssertEqual(Set(users).count, Self.count - 1, "\(users)")
    XCTAssertTrue(users.allSatisfy { $0.count <= 32 }, "\(users)")
  }

  /// A service added past the ECS group's port range could not be reached: the loader refuses it,
  /// naming the service's port field, before any call.
  func testAServicePortOutsideTheECSRangeIsRefused() throws {
    let path = try write(try configuration(toPort: 8090))
    guard
      let error = assertThrowsNow(ConfigurationError.self, { try Deployment.load(from: path) })
    else { return }
    let lines = error.description.split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.count, 5, "\(lines)")
    XCTAssertTrue(
      lines.contains(
        "\(path): services[11].port: 8091 is outside securityGroups.ecs 8080-8090: the load balancer and the other services could not reach extra-12-service; widen fromPort/toPort"
      ), "\(lines)")
  }
}

extension ServiceScaleTests {
  /// Two services whose names give the same MySQL user (32 characters, '-' as '_') would share
  /// one password and one set of grants: refused, naming the second service.
  func testTwoServicesThatWouldShareADatabaseUserAreRefused() throws {
    var config = try configuration(count: 6)
    var services = config["services"] as! [[String: Any]]
    let long = "notification-dispatcher-service-"
    services[4]["name"] = long + "a"
    services[5]["name"] = long + "b"
    config["services"] = services
    let path = try write(config)
    guard
      let error = assertThrowsNow(ConfigurationError.self, { try Deployment.load(from: path) })
    else { return }
    XCTAssertEqual(
      error.description,
      "\(path): services[5].name: '\(long)b' gives the same database user 'notification_dispatcher_service_' as '\(long)a' (MySQL user names: 32 characters, '-' as '_')"
    )
  }
}
