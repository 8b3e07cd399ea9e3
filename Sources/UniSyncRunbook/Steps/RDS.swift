import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 3: RDS MySQL. The DB subnet group over the private subnets (3.1) and the instance (3.2).
/// The databases (3.3) need someone inside the VPC: the ecs step creates them with a one-off
/// Fargate task (``DatabaseSetup``), or, with `rds.databaseSetup.mode` `manual`, the operator
/// does, and confirms it here (a manual action).
///
/// The master password: the guide passes `--master-user-password 'YOUR_SECURE_PASSWORD'` and keeps a
/// copy in the secret `unisync/rds-password`. This step passes `--manage-master-user-password`
/// instead: RDS generates the password, keeps it in a Secrets Manager secret of its own and rotates
/// it. The password never passes through this tool (not in argv, not in the checkpoint), and there
/// is no `unisync/rds-password` secret to keep in step with it. The services read it from that
/// secret: its ARN is exported as `RDS_SECRET_ARN`, the password is its JSON key `password`
/// (the user name is under `username`).
package struct RDSStep: Step {
  package let id = "rds"
  package let section = "3"
  package let title = "RDS MySQL"

  package init() {}

  package func actions(for deployment: Deployment) -> [Action] {
    let rds = deployment.rds
    // AWS keeps DB identifiers and subnet group names in lower case.
    let groupName = rds.subnetGroupName.lowercased()
    let instance = rds.instanceIdentifier.lowercased()
    let privateSubnets = deployment.network.subnets.filter { !$0.isPublic }
    var actions: [Action] = []

    // 3.1 Create the subnet group (over the private subnets). A create with a name that exists
    // replaces the group in the emulator and fails on AWS: look for it in this VPC first.
    let findGroup = Command.aws(
      "rds", "describe-db-subnet-groups",
      "--query",
      "DBSubnetGroups[?DBSubnetGroupName=='\(groupName)' && VpcId=='\(ref: "VPC_ID")'].DBSubnetGroupName",
      "--output", "text")
    actions.append(
      Action(
        name: "subnet-group",
        summary: "create DB subnet group \(groupName) over the private subnets",
        effect: .write,
        command: .aws(
          [
            "rds", "create-db-subnet-group", "--db-subnet-group-name", .text(groupName),
            "--db-subnet-group-description", .text(rds.subnetGroupDescription), "--subnet-ids",
          ]
            + privateSubnets.map { .ref($0.export) }
            + [
              "--tags", deployment.tagList(name: groupName, action: "rds/subnet-group"),
              "--query", "DBSubnetGroup.DBSubnetGroupName", "--output", "text",
            ]),
        capture: Capture(export: nil, pattern: exactPattern(groupName)),
        lookup: Lookup(findGroup),
        alreadyDoneErrors: ["DBSubnetGroupAlreadyExists"],
        precheck: Precheck(findGroup, rule: "a subnet group of this name exists in the VPC") {
          output, _ in
          output.trimmingCharacters(in: .whitespacesAndNewlines) == groupName ? groupName : nil
        },
        // A VPC this run created a moment ago has no subnet group yet.
        settledBy: .nothingToFind(whenCreated: "vpc", inStep: "network")))

    // 3.2 Create the RDS instance (an existing one of the same identifier is used as it is).
    var summary =
      "create DB instance \(instance) (\(rds.instanceClass), \(rds.engine) \(rds.engineVersion)"
    summary += ", \(rds.allocatedStorageGB) GB" + (rds.multiAZ ? ", Multi-AZ)" : ")")
    actions.append(
      Action(
        name: "instance", summary: summary, effect: .write,
        command: .aws(
          "rds", "create-db-instance", "--db-instance-identifier", .text(instance),
          "--db-instance-class", .text(rds.instanceClass), "--engine", .text(rds.engine),
          "--engine-version", .text(rds.engineVersion), "--master-username",
          .text(rds.masterUsername),
          "--manage-master-user-password", "--allocated-storage", "\(rds.allocatedStorageGB)",
          "--db-subnet-group-name", .text(groupName), "--vpc-security-group-ids", .ref("RDS_SG"),
          "--port", "\(deployment.securityGroups.rdsPort)", "--no-publicly-accessible",
          "--backup-retention-period", "\(rds.backupRetentionDays)",
          rds.multiAZ ? "--multi-az" : "--no-multi-az",
          // Not in the guide: storage encrypted at rest (it can only be chosen at creation), and
          // the tags copied to snapshots, so the final snapshot destroy leaves says whose it is.
          "--storage-encrypted", "--copy-tags-to-snapshot",
          "--tags", deployment.tagList(name: instance, action: "rds/instance"),
          "--query", "DBInstance.DBInstanceArn", "--output", "text"),
        capture: Capture(
          export: nil,
          pattern: arnPattern("rds", "db:", name: instance)),
        lookup: Lookup(
          .aws(
            "rds", "describe-db-instances",
            "--query", "DBInstances[?DBInstanceIdentifier=='\(instance)'].DBInstanceArn",
            "--output", "text")),
        alreadyDoneErrors: ["DBInstanceAlreadyExists"], after: ["subnet-group"]))

    // Multi-AZ instances take 10-15 minutes; a rerun after an interruption waits again. The
    // poll asks for the endpoint and the secret's ARN too: the last one answers the two reads
    // after it (3.3) without another call.
    let described = describeInstance(
      instance, "[DBInstanceStatus,Endpoint.Address,MasterUserSecret.SecretArn]")
    actions.append(
      .waitUntil(
        "instance-available", "wait until \(instance) is available",
        command: described,
        success: ["available"],
        failure: [
          "failed", "deleting", "deleted", "incompatible-network", "incompatible-parameters",
          "incompatible-option-group", "incompatible-restore",
          "inaccessible-encryption-credentials",
          "restore-error", "storage-full",
        ],
        timeoutSeconds: Double(rds.waitTimeoutSeconds), intervalSeconds: 15, after: ["instance"]))

    // 3.3 Look up the RDS endpoint (and the secret RDS keeps the master password in).
    actions.append(
      Action(
        name: "endpoint", summary: "read the endpoint of \(instance)", effect: .read,
        command: described,
        capture: Capture(
          export: "RDS_ENDPOINT", pattern: #"^[A-Za-z0-9.-]+$"#, extract: #"^\S+\s+(\S+)"#),
        after: ["instance-available"]))
    actions.append(
      Action(
        name: "master-secret", summary: "read the ARN of the secret holding the master password",
        effect: .read,
        command: described,
        capture: Capture(
          export: "RDS_SECRET_ARN",
          pattern: #"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$"#,
          extract: #"^\S+\s+\S+\s+(\S+)"#),
        // After the endpoint: when the wait was done in an earlier run, that read's answer serves.
        after: ["endpoint"]))

    // 3.3 Create the databases. By default the ecs step does it with a one-off Fargate task in
    // the private subnets (``DatabaseSetup``): the instance is not reachable from outside the
    // VPC. With `rds.databaseSetup.mode` `manual` the operator does it, and confirms it here; the
    // confirmation is an export the ecs step needs before it starts.
    guard deployment.rds.setup.mode == .manual else {
      return deployment.observing(actions, step: id)
    }
    let port = deployment.securityGroups.rdsPort
    actions.append(
      Action(
        name: "create-databases",
        summary:
          "create the databases \(rds.databases.joined(separator: ", ")) (by hand, from inside the VPC)",
        effect: .manual(databaseInstructions(rds, port: port)),
        command: Command(
          tool: "mysql",
          arguments: [
            "-h", .ref("RDS_ENDPOINT"), "-P", "\(port)", "-u", .text(rds.masterUsername), "-p",
          ]),
        capture: Capture(export: DatabaseSetup.confirmedExport, pattern: "^confirmed$")))
    return deployment.observing(actions, step: id)
  }

  /// What the operator does by hand for guide 3.3; safe to do twice (`IF NOT EXISTS`).
  func databaseInstructions(_ rds: Deployment.RDS, port: Int) -> Argument {
    let statements = rds.databases.map { name in
      // A name with '-' must be quoted in SQL; plain ones are written as the guide writes them.
      let plain = name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil
      let identifier = plain ? name : "`\(name)`"
      return
        "     CREATE DATABASE IF NOT EXISTS \(identifier) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
    }
    return """
      The instance accepts connections only from inside the VPC (a bastion host or a VPN).
      1. Read the master password (RDS keeps it in Secrets Manager, key "password"):
           aws secretsmanager get-secret-value --region \(ref: ContextValue.region) --secret-id \(ref: "RDS_SECRET_ARN") --query SecretString --output text
      2. From a host inside the VPC, connect as \(rds.masterUsername):
           mysql -h \(ref: "RDS_ENDPOINT") -P \(port) -u \(rds.masterUsername) -p
      3. Run (safe to run again):
      \(statements.joined(separator: "\n"))
      """
  }

  private func describeInstance(_ instance: String, _ field: String) -> Command {
    .aws(
      "rds", "describe-db-instances", "--db-instance-identifier", .text(instance),
      "--query", "DBInstances[0].\(field)", "--output", "text")
  }
}

// MARK: - Teardown (runbook destroy)

extension RDSStep {
  /// The instance deleted with a final snapshot (`destroy --skip-final-snapshot` goes without),
  /// waited for until it is gone, then its subnet group. The secret RDS kept the master password
  /// in goes with the instance.
  package func teardown(for deployment: Deployment) -> [Action] {
    let rds = deployment.rds
    let instance = rds.instanceIdentifier.lowercased()
    let groupName = rds.subnetGroupName.lowercased()
    var delete: [Argument] = [
      "rds", "delete-db-instance", "--db-instance-identifier", .text(instance),
    ]
    if deployment.request.skipFinalSnapshot {
      delete += ["--skip-final-snapshot"]
    } else {
      delete += ["--final-db-snapshot-identifier", .text(Self.finalSnapshotName(instance))]
    }
    delete += ["--query", "DBInstance.DBInstanceStatus", "--output", "text"]
    let state = Command.aws(
      "rds", "describe-db-instances",
      "--query", "DBInstances[?DBInstanceIdentifier=='\(instance)'].DBInstanceStatus | [0]",
      "--output", "text")
    return [
      Action(
        name: "delete-instance",
        summary: "delete DB instance \(instance)"
          + (deployment.request.skipFinalSnapshot
            ? " without a final snapshot" : " (final snapshot first)"),
        effect: .write, command: .aws(delete),
        alreadyDoneErrors: ["DBInstanceNotFound", "DBInstanceNotFoundFault"],
        // Busy (backing up, modifying): RDS refuses a delete until it is available again.
        transientErrors: TransientErrors(
          ["InvalidDBInstanceState"], seconds: Double(rds.waitTimeoutSeconds), intervalSeconds: 15),
        deletes: "instance"),
      .waitUntil(
        "instance-deleted", "wait until \(instance) is gone", command: state, success: ["None"],
        failure: ["failed", "incompatible-restore"], timeoutSeconds: Double(rds.waitTimeoutSeconds),
        intervalSeconds: 15, after: ["delete-instance"]
      ).deleting("instance"),
      Action(
        name: "delete-subnet-group", summary: "delete DB subnet group \(groupName)", effect: .write,
        command: .aws("rds", "delete-db-subnet-group", "--db-subnet-group-name", .text(groupName)),
        alreadyDoneErrors: ["DBSubnetGroupNotFoundFault"], after: ["instance-deleted"],
        transientErrors: dependencyRetry(deployment, ["InvalidDBSubnetGroupStateFault"]),
        deletes: "subnet-group"),
    ]
  }

  /// `unisync-mysql-final-20261127083012`: a new name for every destroy (snapshot names are unique).
  static func finalSnapshotName(_ instance: String, date: Date = Date()) -> String {
    let stamp = date.formatted(
      .iso8601.year().month().day().dateSeparator(.omitted).time(includingFractionalSeconds: false)
        .timeSeparator(.omitted))
    return "\(instance)-final-" + stamp.filter(\.isNumber)
  }
}
