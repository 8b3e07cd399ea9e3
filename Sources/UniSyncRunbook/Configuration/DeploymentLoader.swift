import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
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

  /// Validates an already parsed document (used by `load` and by tests).
  package static func parse(_ root: JSONValue, file: String, baseDirectory: String) throws
    -> Deployment
  {
    let problems = ProblemList()
    let top = FieldReader(root, path: "", problems: problems)
    let name = top.string("deployment", check: Validate.resourceName)
    let region = top.string("region", check: Validate.region)

    let network = top.object("network") { n -> Network in
      let vpc = n.object("vpc") { v in
        (v.string("name", check: Validate.tagValue), v.string("cidr", check: Validate.cidr))
      }
      let subnets = n.objects("subnets") { s in
        Subnet(
          id: s.string("id", check: Validate.identifier),
          name: s.string("name", check: Validate.tagValue),
          cidr: s.string("cidr", check: Validate.cidr),
          zone: s.string("zone", check: Validate.zone(in: region)),
          isPublic: s.string("tier", check: Validate.oneOf(["public", "private"])) == "public")
      }
      let nat = n.object("natGateway") { g in
        (
          g.string("name", check: Validate.tagValue), g.string("subnet"),
          g.int("waitTimeoutSeconds", default: 900, range: 1...86_400)
        )
      }
      let tables = n.object("routeTables") { t in
        (
          t.string("public", check: Validate.tagValue),
          t.string("private", check: Validate.tagValue)
        )
      }
      return Network(
        vpcName: vpc?.0 ?? "", vpcCidr: vpc?.1 ?? "", subnets: subnets,
        internetGatewayName: n.string("internetGateway", check: Validate.tagValue),
        elasticIpName: n.string("elasticIp", check: Validate.tagValue),
        natGatewayName: nat?.0 ?? "", natSubnet: nat?.1 ?? "",
        natWaitTimeoutSeconds: nat?.2 ?? 900,
        publicRouteTableName: tables?.0 ?? "", privateRouteTableName: tables?.1 ?? "")
    }
    if let network { validateNetwork(network, problems: problems) }

    let groups = top.object("securityGroups") { g -> SecurityGroups in
      var albPorts: [Int] = []
      var ecsRange = 8080...8083
      var rdsPort = 3306
      let alb = g.object("alb") { r -> SecurityGroup in
        albPorts = r.array("ports") { item, path in
          Validate.port(item, path: path, problems: problems)
        }
        return SecurityGroup(
          name: r.string("name", check: Validate.resourceName),
          description: r.string("description", check: Validate.tagValue))
      }
      let ecs = g.object("ecs") { r -> SecurityGroup in
        let low = r.int("fromPort", range: 1...65_535)
        let high = r.int("toPort", range: 1...65_535)
        if low <= high {
          ecsRange = low...high
        } else {
          problems.add(r.fieldPath("toPort"), "\(high) is below fromPort \(low)")
        }
        return SecurityGroup(
          name: r.string("name", check: Validate.resourceName),
          description: r.string("description", check: Validate.tagValue))
      }
      let rds = g.object("rds") { r -> SecurityGroup in
        rdsPort = r.int("port", range: 1...65_535)
        return SecurityGroup(
          name: r.string("name", check: Validate.resourceName),
          description: r.string("description", check: Validate.tagValue))
      }
      let empty = SecurityGroup(name: "", description: "")
      return SecurityGroups(
        alb: alb ?? empty, albPorts: albPorts, ecs: ecs ?? empty, ecsPortRange: ecsRange,
        rds: rds ?? empty, rdsPort: rdsPort)
    }

    let rds = top.object("rds") { r in
      RDS(
        subnetGroupName: r.string("subnetGroup", check: Validate.resourceName),
        subnetGroupDescription: r.string("subnetGroupDescription", check: Validate.tagValue),
        instanceIdentifier: r.string("instance", check: Validate.dbIdentifier),
        instanceClass: r.string("instanceClass", check: Validate.identifierWithDots),
        engine: r.string("engine", check: Validate.identifier),
        engineVersion: r.string("engineVersion", check: Validate.identifierWithDots),
        masterUsername: r.string("masterUsername", check: Validate.identifier),
        allocatedStorageGB: r.int("allocatedStorageGB", range: 20...65_536),
        backupRetentionDays: r.int("backupRetentionDays", range: 0...35),
        multiAZ: r.bool("multiAZ", default: true),
        waitTimeoutSeconds: r.int("waitTimeoutSeconds", default: 2_400, range: 1...86_400),
        databases: r.strings("databases", check: Validate.identifier))
    }

    let secrets = top.object("secrets") { s in
      // `fields`: what `environment` maps to variable names (`value` for a plain string).
      func supplied(_ key: String, fields: [String]) -> SuppliedSecret {
        s.object(key) { r in
          let environment = r.stringMap("environment")
          for field in fields where environment[field] == nil {
            problems.add(
              "secrets.\(key).environment.\(field)", "is required (the variable holding it)")
          }
          for (field, variable) in environment.sorted(by: { $0.key < $1.key }) {
            if !fields.contains(field) {
              problems.add(
                "secrets.\(key).environment.\(field)",
                "is not a field of this secret (fields: \(fields.joined(separator: ", ")))")
            } else if let reason = Validate.environmentVariable(variable) {
              problems.add("secrets.\(key).environment.\(field)", reason)
            }
          }
          return SuppliedSecret(
            name: r.string("name", check: Validate.secretName), environment: environment,
            file: r.optionalString("file"))
        } ?? SuppliedSecret(name: "", environment: [:], file: nil)
      }
      return Secrets(
        encryptionKeyName: s.string("encryptionKey", check: Validate.secretName),
        canvasToken: supplied("canvasToken", fields: ["value"]),
        cognito: supplied("cognito", fields: ["userPoolId", "clientId"]),
        recoveryWindowDays: s.int("recoveryWindowDays", default: 7, range: 7...30))
    }

    let ecr = top.object("ecr") { e in
      ECR(
        repositoryPrefix: e.string("repositoryPrefix", check: Validate.identifier),
        scanOnPush: e.bool("scanOnPush", default: true))
    }

    let services = top.objects("services") { s in
      let templatePath = s.string("taskDefinition")
      var template = DocumentTemplate(path: templatePath, text: "{}")
      if !templatePath.isEmpty {
        switch DocumentTemplate.load(templatePath, base: baseDirectory) {
        case .success(let loaded): template = loaded
        case .failure(let problem): problems.add(s.fieldPath("taskDefinition"), problem.reason)
        }
      }
      return Service(
        name: s.string("name", check: Validate.identifier),
        port: s.int("port", range: 1...65_535),
        buildContext: s.string("buildContext"),
        database: s.optionalString("database", check: Validate.identifier),
        loadBalanced: s.bool("loadBalanced", default: false),
        taskDefinition: template)
    }
    var serviceNames = Set<String>()
    for (index, service) in services.enumerated() where !serviceNames.insert(service.name).inserted
    {
      problems.add("services[\(index)].name", "'\(service.name)' is used by another service")
    }
    if services.filter(\.loadBalanced).count > 1 {
      problems.add("services", "only one service can be behind the load balancer (loadBalanced)")
    }

    let ecs = top.object("ecs") { e in
      ECS(
        cluster: e.string("cluster", check: Validate.resourceName),
        familyPrefix: e.string("familyPrefix", check: Validate.identifier),
        executionRole: e.string("executionRole", check: Validate.resourceName),
        cpu: e.string("cpu", default: "256"), memory: e.string("memory", default: "512"),
        desiredCount: e.int("desiredCount", default: 2, range: 0...1_000),
        loadBalancer: e.string("loadBalancer", check: Validate.resourceName),
        targetGroup: e.string("targetGroup", check: Validate.resourceName),
        healthCheckPath: e.string("healthCheckPath", default: "/actuator/health"),
        deregistrationDelaySeconds: e.int(
          "deregistrationDelaySeconds", default: 30, range: 0...3_600),
        healthCheckGracePeriodSeconds: e.int(
          "healthCheckGracePeriodSeconds", default: 120, range: 0...2_147_483_647),
        deploymentTimeoutSeconds: e.int(
          "deploymentTimeoutSeconds", default: 1_800, range: 1...86_400),
        logRetentionDays: e.int("logRetentionDays", default: 7, range: 1...3_653))
    }
    if let ecs, let problem = FargateTaskSize.problem(cpu: ecs.cpu, memory: ecs.memory) {
      problems.add(problem.field, problem.message)
    }
    if let days = ecs?.logRetentionDays, !Validate.logRetentionDays.contains(days) {
      problems.add(
        "ecs.logRetentionDays",
        "\(days) is not a retention CloudWatch Logs offers (\(Validate.logRetentionDays.map(String.init).joined(separator: ", ")))"
      )
    }

    let lambda = top.object("lambda") { l in
      Lambda(
        functionName: l.string("functionName", check: Validate.resourceName),
        roleName: l.string("roleName", check: Validate.resourceName),
        source: l.string("source"), handler: l.string("handler"),
        runtime: l.string("runtime", default: "python3.11"),
        timeoutSeconds: l.int("timeoutSeconds", default: 300, range: 1...900),
        memoryMB: l.int("memoryMB", default: 512, range: 128...10_240),
        environment: l.stringMap("environment"))
    }

    let sqs = top.object("sqs") { q in
      let queues = q.strings("queues", check: Validate.queueName)
      let dlq = q.object("deadLetter") { d in
        (
          d.string("queue", check: Validate.queueName),
          d.string("source", check: Validate.queueName),
          d.int("maxReceiveCount", default: 5, range: 1...1_000)
        )
      }
      if let dlq, !queues.contains(dlq.1) {
        problems.add("sqs.deadLetter.source", "'\(dlq.1)' is not one of sqs.queues")
      }
      return SQS(
        queues: queues, deadLetterQueue: dlq?.0 ?? "", deadLetterSource: dlq?.1 ?? "",
        maxReceiveCount: dlq?.2 ?? 5)
    }

    let registry = top.optionalString("registry", check: Validate.hostPort)
    let healthCheckUrl = top.optionalString("healthCheckUrl", check: Validate.httpURL)
    let state = top.optionalString("state") { text in
      if case .failure(let error) = S3Location.parse(text) { return error.message }
      return nil
    }
    let operations =
      top.object("operations", required: false) { o in
        var operations = Operations()
        operations.healthCheckTimeoutSeconds = o.int(
          "healthCheckTimeoutSeconds", default: 120, range: 1...3_600)
        operations.healthCheckIntervalSeconds = o.int(
          "healthCheckIntervalSeconds", default: 5, range: 1...300)
        operations.logLines = o.int("logLines", default: 20, range: 0...1_000)
        operations.followIntervalSeconds = o.int(
          "followIntervalSeconds", default: 10, range: 1...3_600)
        operations.deploymentPollSeconds = o.int(
          "deploymentPollSeconds", default: 15, range: 1...600)
        operations.dependencyRetrySeconds = o.int(
          "dependencyRetrySeconds", default: 900, range: 0...86_400)
        return operations
      } ?? Operations()
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

/// An IPv4 network in CIDR notation.
package struct IPv4CIDR: Sendable, Hashable {
  package var address: UInt32
  package var prefixLength: Int

  package init?(_ text: String) {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let length = Int(parts[1]), (0...32).contains(length),
      parts[1].allSatisfy(\.isNumber)
    else { return nil }
    let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
    guard octets.count == 4 else { return nil }
    var value: UInt32 = 0
    for octet in octets {
      guard !octet.isEmpty, octet.count <= 3, octet.allSatisfy(\.isNumber),
        let number = UInt32(octet),
        number <= 255
      else { return nil }
      value = value << 8 | number
    }
    let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - UInt32(length))
    guard value & ~mask == 0 else { return nil }
    address = value
    prefixLength = length
  }

  var mask: UInt32 { prefixLength == 0 ? 0 : ~UInt32(0) << (32 - UInt32(prefixLength)) }

  package func contains(_ other: IPv4CIDR) -> Bool {
    other.prefixLength >= prefixLength && other.address & mask == address
  }

  package func overlaps(_ other: IPv4CIDR) -> Bool { contains(other) || other.contains(self) }
}

/// Field checks: each returns the reason a value is rejected, or nil.
package enum Validate {
  /// The retention periods CloudWatch Logs accepts, in days.
  static let logRetentionDays = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
  ]

  static func cidr(_ text: String) -> String? {
    guard IPv4CIDR(text) == nil else { return nil }
    let parts = text.split(separator: "/")
    if parts.count == 2,
      IPv4CIDR(String(parts[0]) + "/32") != nil || parts[0].split(separator: ".").count == 4,
      let length = Int(parts[1]), (0...32).contains(length)
    {
      return "'\(text)' is not a valid IPv4 CIDR (host bits are set or an octet is out of range)"
    }
    return "'\(text)' is not a valid IPv4 CIDR (expected a.b.c.d/n)"
  }

  package static func region(_ text: String) -> String? {
    text.range(of: #"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$"#, options: .regularExpression)
      == nil
      ? "'\(text)' is not an AWS region name (like ap-northeast-2)" : nil
  }

  static func zone(in region: String) -> (String) -> String? {
    { text in
      // An invalid region is reported once, not again for every zone.
      if Validate.region(region) != nil { return nil }
      guard text.hasPrefix(region), text.count == region.count + 1, text.last?.isLetter == true
      else {
        return "'\(text)' is not an availability zone of \(region)"
      }
      return nil
    }
  }

  static func oneOf(_ choices: [String]) -> (String) -> String? {
    { text in
      choices.contains(text)
        ? nil : "'\(text)' must be one of \(choices.map { "'\($0)'" }.joined(separator: ", "))"
    }
  }

  /// A tag value or description: AWS accepts up to 255 characters; control characters never.
  static func tagValue(_ text: String) -> String? {
    if text.isEmpty { return "must not be empty" }
    if text.count > 255 { return "is longer than 255 characters" }
    if text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
      return "contains a control character"
    }
    return nil
  }

  /// A name AWS uses as an identifier (security group, role, cluster, ALB...).
  static func resourceName(_ text: String) -> String? {
    if let reason = tagValue(text) { return reason }
    if text.count > 64 { return "'\(text)' is longer than 64 characters" }
    return nil
  }

  static func identifier(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z0-9][A-Za-z0-9_-]*$"#, options: .regularExpression) == nil
      ? "'\(text)' may hold only letters, digits, '-' and '_'" : nil
  }

  static func identifierWithDots(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z0-9][A-Za-z0-9._-]*$"#, options: .regularExpression) == nil
      ? "'\(text)' may hold only letters, digits, '.', '-' and '_'" : nil
  }

  static func dbIdentifier(_ text: String) -> String? {
    text.range(of: #"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{0,62}(?<!-)$"#, options: .regularExpression)
      == nil
      ? "'\(text)' is not a valid DB instance identifier (a letter, then letters, digits and single hyphens)"
      : nil
  }

  static func secretName(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z0-9/_+=.@-]{1,512}$"#, options: .regularExpression) == nil
      ? "'\(text)' is not a valid secret name" : nil
  }

  static func environmentVariable(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) == nil
      ? "'\(text)' is not an environment variable name" : nil
  }

  static func queueName(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z0-9_-]{1,80}$"#, options: .regularExpression) == nil
      ? "'\(text)' is not a valid SQS queue name (1-80 letters, digits, '-' or '_')" : nil
  }

  static func hostPort(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z0-9.-]+:[0-9]{1,5}$"#, options: .regularExpression) == nil
      ? "'\(text)' is not host:port" : nil
  }

  package static func httpURL(_ text: String) -> String? {
    guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil
    else { return "'\(text)' is not an http(s) URL" }
    return nil
  }

  static func port(_ value: JSONValue, path: String, problems: ProblemList) -> Int? {
    guard case .number(let number) = value, let port = Int(exactly: number) else {
      problems.add(path, "must be a port number, not \(value.kindName)")
      return nil
    }
    guard (1...65_535).contains(port) else {
      problems.add(path, "\(port) is out of range (1-65535)")
      return nil
    }
    return port
  }
}
