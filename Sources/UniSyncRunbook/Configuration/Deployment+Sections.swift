// How each section of a configuration file is read: one initializer per section, reading its
// fields in the file's order. A missing required section or field is reported by the reader; the
// values then stand in only so that the other checks can go on.

extension Deployment.Network {
  /// `network`.
  init(reading n: FieldReader, region: String) {
    let vpc = n.object("vpc", VPCSettings.init(reading:)) ?? VPCSettings()
    let subnets = n.objects("subnets") { s in
      Deployment.Subnet(
        id: s.string("id", check: Validate.identifier),
        name: s.string("name", check: Validate.tagValue),
        cidr: s.string("cidr", check: Validate.cidr),
        zone: s.string("zone", check: Validate.zone(in: region)),
        isPublic: s.string("tier", check: Validate.oneOf(["public", "private"])) == "public")
    }
    let nat = n.object("natGateway", NATGatewaySettings.init(reading:)) ?? NATGatewaySettings()
    let tables = n.object("routeTables", RouteTableNames.init(reading:)) ?? RouteTableNames()
    self.init(
      vpcName: vpc.name, vpcCidr: vpc.cidr, subnets: subnets,
      internetGatewayName: n.string("internetGateway", check: Validate.tagValue),
      elasticIpName: n.string("elasticIp", check: Validate.tagValue),
      natGatewayName: nat.name, natSubnet: nat.subnet,
      natWaitTimeoutSeconds: nat.waitTimeoutSeconds,
      publicRouteTableName: tables.publicTable, privateRouteTableName: tables.privateTable)
  }
}

/// `network.vpc`.
private struct VPCSettings {
  var name = ""
  var cidr = ""

  init() {}

  init(reading v: FieldReader) {
    name = v.string("name", check: Validate.tagValue)
    cidr = v.string("cidr", check: Validate.cidr)
  }
}

/// `network.natGateway`.
private struct NATGatewaySettings {
  static let defaultWaitTimeoutSeconds = 900

  var name = ""
  /// The `id` of the public subnet that holds it.
  var subnet = ""
  var waitTimeoutSeconds = defaultWaitTimeoutSeconds

  init() {}

  init(reading g: FieldReader) {
    name = g.string("name", check: Validate.tagValue)
    subnet = g.string("subnet")
    waitTimeoutSeconds = g.int(
      "waitTimeoutSeconds", default: Self.defaultWaitTimeoutSeconds, range: 1...86_400)
  }
}

/// `network.routeTables`: the names of the public and the private route table.
private struct RouteTableNames {
  var publicTable = ""
  var privateTable = ""

  init() {}

  init(reading t: FieldReader) {
    publicTable = t.string("public", check: Validate.tagValue)
    privateTable = t.string("private", check: Validate.tagValue)
  }
}

extension Deployment.SecurityGroup {
  /// A group's `name` and `description`.
  init(reading r: FieldReader) {
    self.init(
      name: r.string("name", check: Validate.resourceName),
      description: r.string("description", check: Validate.tagValue))
  }
}

extension Deployment.SecurityGroups {
  /// `securityGroups`: each group, with the ports its rules open.
  init(reading g: FieldReader) {
    let problems = g.problems
    var albPorts: [Int] = []
    var ecsRange = 8080...8083
    var rdsPort = 3306
    let alb = g.object("alb") { r -> Deployment.SecurityGroup in
      albPorts = r.array("ports") { item, path in
        Validate.port(item, path: path, problems: problems)
      }
      return Deployment.SecurityGroup(reading: r)
    }
    let ecs = g.object("ecs") { r -> Deployment.SecurityGroup in
      let low = r.int("fromPort", range: 1...65_535)
      let high = r.int("toPort", range: 1...65_535)
      if low <= high {
        ecsRange = low...high
      } else {
        problems.add(r.fieldPath("toPort"), "\(high) is below fromPort \(low)")
      }
      return Deployment.SecurityGroup(reading: r)
    }
    let rds = g.object("rds") { r -> Deployment.SecurityGroup in
      rdsPort = r.int("port", range: 1...65_535)
      return Deployment.SecurityGroup(reading: r)
    }
    let empty = Deployment.SecurityGroup(name: "", description: "")
    self.init(
      alb: alb ?? empty, albPorts: albPorts, ecs: ecs ?? empty, ecsPortRange: ecsRange,
      rds: rds ?? empty, rdsPort: rdsPort)
  }
}

extension Deployment.RDS {
  /// `rds`.
  init(reading r: FieldReader) {
    let setup =
      r.object("databaseSetup", required: false, Deployment.DatabaseSetup.init(reading:))
      ?? Deployment.DatabaseSetup()
    self.init(
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
      databases: r.strings("databases", check: Validate.identifier), setup: setup)
  }
}

extension Deployment.DatabaseSetup {
  /// `rds.databaseSetup`: every field is optional.
  init(reading s: FieldReader) {
    self.init()
    let modes = [Mode.task, .manual].map(\.rawValue)
    mode =
      Mode(rawValue: s.string("mode", default: mode.rawValue, check: Validate.oneOf(modes)))
      ?? .task
    image = s.string("image", default: image, check: Validate.tagValue)
    timeoutSeconds = s.int("timeoutSeconds", default: timeoutSeconds, range: 30...86_400)
    userSecretPrefix = s.string(
      "userSecretPrefix", default: userSecretPrefix, check: Validate.secretName)
  }
}

extension Deployment.Secrets {
  /// `secrets`.
  init(reading s: FieldReader) {
    self.init(
      encryptionKeyName: s.string("encryptionKey", check: Validate.secretName),
      canvasToken: Self.supplied(s, "canvasToken", fields: ["value"]),
      cognito: Self.supplied(s, "cognito", fields: ["userPoolId", "clientId"]),
      recoveryWindowDays: s.int("recoveryWindowDays", default: 7, range: 7...30))
  }

  /// `secrets.<key>`: a secret the operator supplies. `fields`: what `environment` maps to
  /// variable names (`value` for a plain string).
  private static func supplied(_ s: FieldReader, _ key: String, fields: [String])
    -> Deployment.SuppliedSecret
  {
    s.object(key) { r in
      let environment = r.stringMap("environment")
      for field in fields where environment[field] == nil {
        r.problems.add(
          "secrets.\(key).environment.\(field)", "is required (the variable holding it)")
      }
      for (field, variable) in environment.sorted(by: { $0.key < $1.key }) {
        if !fields.contains(field) {
          r.problems.add(
            "secrets.\(key).environment.\(field)",
            "is not a field of this secret (fields: \(fields.joined(separator: ", ")))")
        } else if let reason = Validate.environmentVariable(variable) {
          r.problems.add("secrets.\(key).environment.\(field)", reason)
        }
      }
      return Deployment.SuppliedSecret(
        name: r.string("name", check: Validate.secretName), environment: environment,
        file: r.optionalString("file"))
    } ?? Deployment.SuppliedSecret(name: "", environment: [:], file: nil)
  }
}

extension Deployment.ECR {
  /// `ecr`.
  init(reading e: FieldReader) {
    self.init(
      repositoryPrefix: e.string("repositoryPrefix", check: Validate.identifier),
      scanOnPush: e.bool("scanOnPush", default: true))
  }
}

extension Deployment.Service {
  /// One of `services`; its task definition template is read from beside the configuration.
  init(reading s: FieldReader, baseDirectory: String) {
    let templatePath = s.string("taskDefinition")
    var template = DocumentTemplate(path: templatePath, text: "{}")
    if !templatePath.isEmpty {
      switch DocumentTemplate.load(templatePath, base: baseDirectory) {
      case .success(let loaded): template = loaded
      case .failure(let problem): s.problems.add(s.fieldPath("taskDefinition"), problem.reason)
      }
    }
    self.init(
      name: s.string("name", check: Validate.identifier),
      port: s.int("port", range: 1...65_535),
      buildContext: s.string("buildContext"),
      database: s.optionalString("database", check: Validate.identifier),
      loadBalanced: s.bool("loadBalanced", default: false),
      taskDefinition: template,
      migration: Self.migration(s))
  }

  /// `migration`: absent, or a non-empty array of non-empty strings (an argv, never a shell line).
  private static func migration(_ s: FieldReader) -> [String]? {
    guard let value = s.raw("migration") else { return nil }
    let what = "must be a non-empty array of strings (the command and its arguments)"
    guard case .array(let items) = value else {
      s.problems.add(s.fieldPath("migration"), "\(what), not \(value.kindName)")
      return nil
    }
    guard !items.isEmpty else {
      s.problems.add(s.fieldPath("migration"), "\(what), not an empty array")
      return nil
    }
    let words = s.strings("migration") { $0.isEmpty ? "must not be an empty string" : nil }
    return words.count == items.count ? words : nil
  }
}

extension Deployment.ECS {
  /// `ecs`.
  init(reading e: FieldReader) {
    self.init(
      cluster: e.string("cluster", check: Validate.resourceName),
      familyPrefix: e.string("familyPrefix", check: Validate.identifier),
      executionRole: e.string("executionRole", check: Validate.resourceName),
      cpu: e.string("cpu", default: String(Self.defaultCPUUnits)),
      memory: e.string("memory", default: String(Self.defaultMemoryMiB)),
      desiredCount: e.int("desiredCount", default: 2, range: 0...1_000),
      loadBalancer: e.string("loadBalancer", check: Validate.resourceName),
      targetGroup: e.string("targetGroup", check: Validate.resourceName),
      healthCheckPath: e.string(
        "healthCheckPath", default: "/actuator/health", check: Validate.healthCheckPath),
      healthCheck: TargetHealthCheck(reading: e),
      deregistrationDelaySeconds: e.int(
        "deregistrationDelaySeconds", default: 30, range: 0...3_600),
      healthCheckGracePeriodSeconds: e.int(
        "healthCheckGracePeriodSeconds",
        default: TargetHealthCheck.defaultGracePeriodSeconds, range: 0...2_147_483_647),
      deploymentTimeoutSeconds: e.int(
        "deploymentTimeoutSeconds", default: 1_800, range: 1...86_400),
      logRetentionDays: e.int("logRetentionDays", default: 7, range: 1...3_653),
      taskRole: e.string(
        "taskRole", default: "\(e.optionalString("familyPrefix") ?? "unisync")-ecs-task-role",
        check: Validate.resourceName),
      taskRolePolicies: e.raw("taskRolePolicies") == nil
        ? [] : e.strings("taskRolePolicies", check: Validate.managedPolicyARN))
  }
}

extension Deployment.Lambda {
  /// `lambda`.
  init(reading l: FieldReader) {
    self.init(
      functionName: l.string("functionName", check: Validate.resourceName),
      roleName: l.string("roleName", check: Validate.resourceName),
      source: l.string("source"), handler: l.string("handler"),
      runtime: l.string("runtime", default: "python3.11"),
      timeoutSeconds: l.int("timeoutSeconds", default: 300, range: 1...900),
      memoryMB: l.int("memoryMB", default: 512, range: 128...10_240),
      environment: l.stringMap("environment"))
  }
}

extension Deployment.SQS {
  /// `sqs`: the queues, and the dead-letter queue of one of them.
  init(reading q: FieldReader) {
    let queues = q.strings("queues", check: Validate.queueName)
    let deadLetter = q.object("deadLetter", DeadLetterSettings.init(reading:))
    if let deadLetter, !queues.contains(deadLetter.source) {
      q.problems.add("sqs.deadLetter.source", "'\(deadLetter.source)' is not one of sqs.queues")
    }
    let settings = deadLetter ?? DeadLetterSettings()
    self.init(
      queues: queues, deadLetterQueue: settings.queue, deadLetterSource: settings.source,
      maxReceiveCount: settings.maxReceiveCount)
  }
}

/// `sqs.deadLetter`.
private struct DeadLetterSettings {
  static let defaultMaxReceiveCount = 5

  var queue = ""
  /// The queue whose messages go to `queue` after `maxReceiveCount` receives.
  var source = ""
  var maxReceiveCount = defaultMaxReceiveCount

  init() {}

  init(reading d: FieldReader) {
    queue = d.string("queue", check: Validate.queueName)
    source = d.string("source", check: Validate.queueName)
    maxReceiveCount = d.int(
      "maxReceiveCount", default: Self.defaultMaxReceiveCount, range: 1...1_000)
  }
}

extension Deployment.Operations {
  /// `operations`: every bound and interval is optional; the defaults are the properties' own.
  init(reading o: FieldReader) {
    self.init()
    healthCheckTimeoutSeconds = o.int(
      "healthCheckTimeoutSeconds", default: healthCheckTimeoutSeconds, range: 1...3_600)
    healthCheckIntervalSeconds = o.int(
      "healthCheckIntervalSeconds", default: healthCheckIntervalSeconds, range: 1...300)
    logLines = o.int("logLines", default: logLines, range: 0...1_000)
    followIntervalSeconds = o.int(
      "followIntervalSeconds", default: followIntervalSeconds, range: 1...3_600)
    deploymentPollSeconds = o.int(
      "deploymentPollSeconds", default: deploymentPollSeconds, range: 1...600)
    dependencyRetrySeconds = o.int(
      "dependencyRetrySeconds", default: dependencyRetrySeconds, range: 0...86_400)
    pausePercent = o.int("pausePercent", default: pausePercent, range: 1...100)
  }
}
