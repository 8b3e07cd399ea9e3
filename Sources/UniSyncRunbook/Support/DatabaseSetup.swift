import Foundation
import RunbookEngine
import RunbookProcess

/// Guide 3.3 without a bastion: the databases are created by a one-off Fargate task in the
/// private subnets, at the start of the ecs step, before any service (docs/architecture.md,
/// "The databases before the services").
///
/// The task runs the `mysql` client of `rds.databaseSetup.image` with `CREATE DATABASE IF NOT
/// EXISTS`, so a rerun is harmless. Its credentials come from the secret RDS keeps the master
/// password in, as container secrets (`valueFrom` with the JSON keys `username` and `password`):
/// ECS puts them into the container's environment when it starts (`MYSQL_PWD`, which the client
/// reads), so they are on no command line, in no task definition and in nothing this tool keeps.
///
/// With `rds.databaseSetup.mode` `manual`, the rds step keeps the guide's manual 3.3 and the ecs
/// step needs its confirmation (`DATABASES_CONFIRMED`) before it starts.
enum DatabaseSetup {
  /// The action every service of the ecs step waits for.
  static let gate = "databases"
  /// Exported by the manual 3.3 when the operator confirms it.
  static let confirmedExport = "DATABASES_CONFIRMED"
  /// The export of the task definition of the setup task.
  static let taskDefinitionExport = "DB_SETUP_TASK_DEF"
  /// Where the run of the setup task keeps its task ARN (``OneOffTask/Memory``).
  static let taskExport = "DB_SETUP_TASK"
  static let container = "db-setup"

  /// `unisync-db-setup`.
  static func family(_ deployment: Deployment) -> String {
    "\(deployment.ecs.familyPrefix)-db-setup"
  }

  static func logGroup(_ deployment: Deployment) -> String { "/ecs/" + family(deployment) }

  /// The actions of the ecs step for guide 3.3: its log group, its task definition, its run.
  /// In manual mode, a check that the operator confirmed 3.3.
  static func actions(_ deployment: Deployment, step: String) -> [Action] {
    guard deployment.rds.setup.mode == .task else { return [confirmed(deployment)] }
    let family = family(deployment)
    let document = taskDefinition(deployment)
    let logGroup = deployment.logGroupActions(
      logGroup(deployment), suffix: container, step: step,
      retentionDays: deployment.ecs.logRetentionDays)
    let register = TaskDefinitions.registration(
      deployment, step: step, name: container, family: family, document: document,
      export: taskDefinitionExport,
      summary: "register task definition \(family) (the mysql client, for guide 3.3)")
    return logGroup + [register, run(deployment)]
  }

  /// `destroy`: the setup task's revisions deregistered and its log group deleted. (Its task
  /// stopped long ago; the databases go with the instance.)
  static func teardown(_ deployment: Deployment, after: [String]) -> [Action] {
    guard deployment.rds.setup.mode == .task else { return [] }
    return [
      TaskDefinitions.deregisterRevisions(deployment, container, after: after),
      deployment.logGroupTeardown(logGroup(deployment), suffix: container, after: after),
    ]
  }

  /// The one-off task of guide 3.3.
  static func task(_ deployment: Deployment) -> OneOffTask {
    OneOffTask(
      taskDefinition: .ref(taskDefinitionExport), container: container, command: nil,
      subnets: deployment.network.subnets.filter { !$0.isPublic }.map { .ref($0.export) },
      securityGroup: .ref("ECS_SG"), logGroup: logGroup(deployment), purpose: container,
      timeoutSeconds: deployment.rds.setup.timeoutSeconds,
      pollSeconds: deployment.operations.deploymentPollSeconds,
      logLines: deployment.operations.logLines)
  }

  /// Runs the setup task and waits for it; fails unless its container exited 0.
  private static func run(_ deployment: Deployment) -> Action {
    let task = task(deployment)
    let databases = deployment.rds.databases.joined(separator: ", ")
    let procedure = Procedure(
      "create the databases \(databases) with a one-off task",
      outline: task.outline,
      requires: ["CLUSTER_ARN", taskDefinitionExport, "ECS_SG"]
        + deployment.network.subnets.filter { !$0.isPublic }.map(\.export)
    ) { context in
      let definition = context.values[taskDefinitionExport] ?? ""
      let ending = try await task.run(
        context, memory: OneOffTask.Memory(export: taskExport, key: definition))
      guard ending.succeeded else {
        throw ProcedureFailure(
          "the database task \(OneOffTask.short(ending.taskArn)) failed: \(ending.summary); its log lines are above (\(logGroup(deployment))). Fix the cause and rerun: no service was created"
        )
      }
      return ending.taskArn
    }
    var action = Action(
      name: gate,
      summary:
        "create the databases \(databases) (guide 3.3) with a one-off Fargate task in the private subnets",
      // Safe to run again as it is: it follows the task an interrupted run started (recorded,
      // or found by its startedBy) and runs a new one only after a failed one.
      effect: .write, command: task.runTask(startedBy: .ref("STARTED_BY")), idempotent: true,
      // The execution role reads the secrets when the task starts: its policies first.
      after: ["task-definition-\(container)", "log-retention-\(container)"]
        + deployment.executionRoleActions,
      procedure: procedure)
    // Its task pulls the client image through the private subnets' route to the NAT gateway,
    // which no id names: when the network step runs beside this one, it waits for all of it.
    action.afterSteps = ["network"]
    return action
  }

  /// Manual mode: the step goes no further than this until the operator confirmed guide 3.3.
  private static func confirmed(_ deployment: Deployment) -> Action {
    let procedure = Procedure(
      "check that guide 3.3 was confirmed",
      outline: [
        .note("\(confirmedExport) must be in the checkpoint (rds/create-databases confirmed)")
      ],
      requires: [confirmedExport]
    ) { context in
      guard context.values[confirmedExport] != nil else {
        throw ProcedureFailure(
          "the databases of guide 3.3 are not confirmed: run 'runbook run rds' in a terminal and confirm rds/create-databases once they exist"
        )
      }
      return "confirmed"
    }
    return Action(
      name: gate, summary: "check that the databases of guide 3.3 were created by hand",
      effect: .read, command: Command(tool: "", arguments: []), procedure: procedure)
  }

  // MARK: The services' own users

  /// `user_service`: the database user of a service (MySQL user names have at most 32
  /// characters); by hand (manual 3.3), the master user.
  static func user(_ deployment: Deployment, _ service: Deployment.Service) -> String {
    deployment.rds.setup.mode == .manual
      ? deployment.rds.masterUsername
      : userName(service.name)
  }

  /// `user_service` for `user-service`: '-' as '_', at most 32 characters (the loader refuses two
  /// services that would share one).
  static func userName(_ service: String) -> String {
    String(service.replacingOccurrences(of: "-", with: "_").prefix(32))
  }

  /// `unisync/db-user-service`: the secret holding that user's password.
  static func userSecret(_ deployment: Deployment, _ service: Deployment.Service) -> String {
    deployment.rds.setup.userSecretPrefix + service.name
  }

  /// `DB_PASSWORD_SECRET_ARN_USER_SERVICE`.
  static func userSecretExport(_ service: Deployment.Service) -> String {
    "DB_PASSWORD_SECRET_ARN_" + exportSuffix(service.name)
  }

  /// `DB_PASSWORD_USER_SERVICE`: the variable the setup task's container gets the password in.
  static func passwordVariable(_ service: Deployment.Service) -> String {
    "DB_PASSWORD_" + exportSuffix(service.name)
  }

  /// Where a service's task definition reads its database password: its own user's secret, or
  /// (guide 3.3 by hand, no users made) the master secret's `password` key.
  static func passwordSecret(_ deployment: Deployment, _ service: Deployment.Service) -> Argument {
    deployment.rds.setup.mode == .manual
      ? .ref("RDS_SECRET_ARN") + ":password::" : .ref(userSecretExport(service))
  }

  // MARK: The task definition

  /// The SQL of guide 3.3, and each service's user with all privileges on its own database and
  /// none elsewhere: safe to run again (`IF NOT EXISTS`; `ALTER USER` sets the password the
  /// secret holds now). `$DB_PASSWORD_…` are expanded by the container's shell from its secrets
  /// (letters and digits: nothing to quote).
  static func statements(_ deployment: Deployment) -> [String] {
    var statements = deployment.rds.databases.map { name in
      "CREATE DATABASE IF NOT EXISTS \(quoted(name)) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
    }
    for service in deployment.services {
      guard let database = service.database else { continue }
      let user = "'\(user(deployment, service))'@'%'"
      let password = "'$\(passwordVariable(service))'"
      statements += [
        "CREATE USER IF NOT EXISTS \(user) IDENTIFIED BY \(password);",
        "ALTER USER \(user) IDENTIFIED BY \(password);",
        "GRANT ALL PRIVILEGES ON \(quoted(database)).* TO \(user);",
      ]
    }
    return statements
  }

  /// `user_db`, or `` `user-db` `` where SQL needs the quotes.
  static func quoted(_ name: String) -> String {
    name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil
      ? name : "`\(name)`"
  }

  /// The container's shell script: the statements on the client's standard input (a here
  /// document, so nothing of them is a shell word), the password from `MYSQL_PWD`. Not
  /// `--verbose`: it would echo the statements, passwords and all, into the task's log.
  static func script(_ deployment: Deployment) -> String {
    let sql = statements(deployment).joined(separator: "\n")
      // An unquoted here document expands `$NAME` (the services' passwords) and backquotes.
      .replacingOccurrences(of: "`", with: "\\`")
    return """
      set -e
      mysql --host="$DB_HOST" --port="$DB_PORT" --user="$DB_MASTER_USER" --batch <<SQL
      \(sql)
      SQL
      echo "guide 3.3: databases ready"
      """
  }

  /// The setup task's definition: one container, the master credentials as container secrets.
  static func taskDefinition(_ deployment: Deployment) -> Argument {
    let secret = "RDS_SECRET_ARN"
    let region = ContextValue.region
    var document: Argument = .text(
      #"{"family":"# + jsonString(family(deployment))
        + #","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"#
        + jsonString(deployment.ecs.cpu) + #","memory":"# + jsonString(deployment.ecs.memory)
        + #","executionRoleArn":""#)
    document = document + .ref("EXECUTION_ROLE_ARN")
    document =
      document
      + .text(
        #"","containerDefinitions":[{"name":"# + jsonString(container) + #","image":"#
          + jsonString(deployment.rds.setup.image)
          // A soft limit well under any Fargate size: the client needs little. (moto's RunTask
          // also needs a container-level figure; AWS takes the task's alone.)
          // `sh -c` is the container's own entry point, run by ECS inside the task: the tool
          // starts no shell (its commands stay argv arrays); the container's shell is what puts
          // the passwords of its environment (task secrets) into the SQL, off every command line.
          + #","essential":true,"memoryReservation":64,"entryPoint":["sh","-c"],"command":["#
          + jsonString(script(deployment))
          + #"],"environment":[{"name":"DB_HOST","value":""#)
    document = document + .ref("RDS_ENDPOINT")
    document =
      document
      + .text(
        #""},{"name":"DB_PORT","value":""# + "\(deployment.securityGroups.rdsPort)"
          + #""}],"secrets":[{"name":"DB_MASTER_USER","valueFrom":""#)
    document = document + .ref(secret) + #":username::"},{"name":"MYSQL_PWD","valueFrom":""#
    document = document + .ref(secret) + #":password::"}"#
    // Each service user's password, from its own secret (task mode only: manual makes none).
    for service in deployment.services
    where service.database != nil && deployment.rds.setup.mode == .task {
      document =
        document + .text(#",{"name":"# + jsonString(passwordVariable(service)) + #","valueFrom":""#)
        + .ref(userSecretExport(service)) + #""}"#
    }
    document =
      document + #"],"logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"#
    document =
      document + .text(jsonString(logGroup(deployment)) + #","awslogs-region":""#)
      + .ref(region) + #"","awslogs-stream-prefix":"ecs"}}}]}"#
    return document
  }
}

extension Deployment {
  /// The actions of the ecs step that make the execution role and give it its policies.
  fileprivate var executionRoleActions: [String] {
    roleActions(step: ECSStep().id, ECSStep.executionRole(self)).map(\.name)
  }
}
