import Foundation
import RunbookState

/// A configuration file that cannot be used; every problem is listed.
package struct ConfigurationError: Error, Sendable, CustomStringConvertible {
  package var file: String
  package var problems: [String]

  package var description: String {
    problems.map { "\(file): \($0)" }.joined(separator: "\n")
  }
}

extension Deployment {
  /// Reads and validates a deployment file; throws ``ConfigurationError`` listing every problem.
  package static func load(from path: String) throws -> Deployment {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ConfigurationError(file: path, problems: ["cannot be read (missing or not readable)"])
    }
    let root: JSONValue
    do {
      root = try JSONDecoder().decode(JSONValue.self, from: data)
    } catch {
      throw ConfigurationError(
        file: path, problems: ["is not valid JSON (\(jsonErrorSummary(error)))"])
    }
    let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
    return try parse(root, file: path, baseDirectory: base)
  }

  /// Validates an already parsed document (used by `load` and by tests). Each section is read by
  /// its own initializer, in the file's order, so that the problems come in that order.
  package static func parse(_ root: JSONValue, file: String, baseDirectory: String) throws
    -> Deployment
  {
    let problems = ProblemList()
    let top = FieldReader(root, path: "", problems: problems)
    let name = top.string("deployment", check: Validate.resourceName)
    let region = top.string("region", check: Validate.region)
    let network = top.object("network") { Network(reading: $0, region: region) }
    if let network { validateNetwork(network, problems: problems) }
    let groups = top.object("securityGroups", SecurityGroups.init(reading:))
    let rds = top.object("rds", RDS.init(reading:))
    let secrets = top.object("secrets", Secrets.init(reading:))
    let ecr = top.object("ecr", ECR.init(reading:))
    let services = top.objects("services") { Service(reading: $0, baseDirectory: baseDirectory) }
    validateServices(services, users: rds?.setup.mode != .manual, problems: problems)
    if let groups { validatePorts(services, groups, problems: problems) }
    let ecs = top.object("ecs", ECS.init(reading:))
    if let ecs, let problem = FargateTaskSize.problem(cpu: ecs.cpu, memory: ecs.memory) {
      problems.add(problem.field, problem.message)
    }
    if let days = ecs?.logRetentionDays, !Validate.logRetentionDays.contains(days) {
      problems.add(
        "ecs.logRetentionDays",
        "\(days) is not a retention CloudWatch Logs offers (\(Validate.logRetentionDays.map(String.init).joined(separator: ", ")))"
      )
    }
    let lambda = top.object("lambda", Lambda.init(reading:))
    let sqs = top.object("sqs", SQS.init(reading:))
    let registry = top.optionalString("registry", check: Validate.hostPort)
    let healthCheckUrl = top.optionalString("healthCheckUrl", check: Validate.httpURL)
    let state = top.optionalString("state") { text in
      if case .failure(let error) = S3Location.parse(text) { return error.message }
      return nil
    }
    let operations =
      top.object("operations", required: false, Operations.init(reading:)) ?? Operations()
    top.finish()

    guard problems.items.isEmpty, let network, let groups, let rds, let secrets, let ecr, let ecs,
      let lambda, let sqs
    else {
      throw ConfigurationError(
        file: file, problems: problems.items.map { "\($0.field): \($0.reason)" })
    }
    return Deployment(
      name: name, region: region, network: network, securityGroups: groups, rds: rds,
      secrets: secrets, ecr: ecr, services: services, ecs: ecs, lambda: lambda, sqs: sqs,
      registry: registry, healthCheckUrl: healthCheckUrl, state: state, operations: operations,
      baseDirectory: baseDirectory)
  }

  /// Service names are unique, and one service at most is behind the load balancer.
  /// With `users` (guide 3.3 by the tool), each service with a database gets a user of its own.
  private static func validateServices(_ services: [Service], users: Bool, problems: ProblemList) {
    var serviceNames = Set<String>()
    for (index, service) in services.enumerated() where !serviceNames.insert(service.name).inserted
    {
      problems.add("services[\(index)].name", "'\(service.name)' is used by another service")
    }
    // Each service with a database gets a MySQL user named after it (``DatabaseSetup``): two names
    // that give the same user would share one password and one set of grants.
    var taken: [String: String] = [:]
    for (index, service) in services.enumerated() where users && service.database != nil {
      let user = UniSyncRunbook.DatabaseSetup.userName(service.name)
      if let other = taken[user], other != service.name {
        problems.add(
          "services[\(index)].name",
          "'\(service.name)' gives the same database user '\(user)' as '\(other)' (MySQL user names: 32 characters, '-' as '_')"
        )
      } else {
        taken[user] = service.name
      }
    }
    if services.filter(\.loadBalanced).count > 1 {
      problems.add("services", "only one service can be behind the load balancer (loadBalanced)")
    }
  }

  /// Every service listens inside the ECS group's port range: its rules (from the ALB, and from
  /// the group itself for the services' calls to each other) admit that range only, so a port
  /// outside it (a service added past `toPort`) would be unreachable once deployed.
  private static func validatePorts(
    _ services: [Service], _ groups: SecurityGroups, problems: ProblemList
  ) {
    // A range or a port reported already would only be reported again.
    let reported = Set(problems.items.map(\.field))
    guard !reported.contains(where: { $0.hasPrefix("securityGroups.ecs") }) else { return }
    let range = groups.ecsPortRange
    for (index, service) in services.enumerated()
    where !range.contains(service.port) && !reported.contains("services[\(index)].port") {
      problems.add(
        "services[\(index)].port",
        "\(service.port) is outside securityGroups.ecs \(range.lowerBound)-\(range.upperBound): the load balancer and the other services could not reach \(service.name); widen fromPort/toPort"
      )
    }
  }

  private static func validateNetwork(_ network: Network, problems: ProblemList) {
    // An invalid VPC CIDR is reported by its field; the checks below still run without it.
    let vpc = IPv4CIDR(network.vpcCidr)
    var seenIds = Set<String>()
    for (index, subnet) in network.subnets.enumerated() {
      let path = "network.subnets[\(index)]"
      if !seenIds.insert(subnet.id).inserted {
        problems.add("\(path).id", "'\(subnet.id)' is used by another subnet")
      }
      guard let cidr = IPv4CIDR(subnet.cidr) else { continue }
      if let vpc, !vpc.contains(cidr) {
        problems.add("\(path).cidr", "\(subnet.cidr) is not inside the VPC's \(network.vpcCidr)")
      }
      for other in network.subnets[..<index] {
        if let otherCidr = IPv4CIDR(other.cidr), otherCidr.overlaps(cidr) {
          problems.add("\(path).cidr", "\(subnet.cidr) overlaps \(other.id)'s \(other.cidr)")
        }
      }
    }
    // When the subnets themselves could not be read, the checks below would only repeat that.
    guard
      !problems.items.contains(where: { $0.field.hasPrefix("network.subnets") })
        || !network.subnets.isEmpty
    else { return }
    if !network.subnets.contains(where: { $0.isPublic }) {
      problems.add("network.subnets", "needs at least one public subnet")
    }
    if !network.subnets.contains(where: { !$0.isPublic }) {
      problems.add("network.subnets", "needs at least one private subnet")
    }
    if let nat = network.subnets.first(where: { $0.id == network.natSubnet }) {
      if !nat.isPublic {
        problems.add("network.natGateway.subnet", "'\(nat.id)' is not a public subnet")
      }
    } else {
      problems.add("network.natGateway.subnet", "'\(network.natSubnet)' is not a subnet id")
    }
  }
}

private func jsonErrorSummary(_ error: Error) -> String {
  if case DecodingError.dataCorrupted(let context) = error {
    let underlying =
      (context.underlyingError as NSError?)?.userInfo["NSDebugDescription"] as? String
    return underlying ?? context.debugDescription
  }
  return "\(error)"
}
