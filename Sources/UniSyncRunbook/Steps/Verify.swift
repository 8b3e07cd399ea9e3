import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 9: verify the deployment. "Reach it through the ALB DNS name" (9.1) and "check the logs"
/// (9.2), plus what an operator looks at when the answer is not `UP`:
/// - first, while a new deployment is still on its way on AWS (the load balancer
///   `provisioning`, a service's deployment in progress with fewer tasks running than desired),
///   it looks again every `healthCheckIntervalSeconds` instead of judging ("waiting for the
///   deployment to settle"), within the same `healthCheckTimeoutSeconds` as the probe;
/// - the ALB's DNS name, the health of every target of the target group, and each service's
///   running/desired count, deployment and latest events;
/// - `GET http://<ALB_DNS>/actuator/health` (or the configuration's `healthCheckUrl`) with
///   `runbook-health-probe` (Foundation's URLSession, see ``HealthProbe``), retried for a bounded
///   time, expecting HTTP 200 and `"status":"UP"`; status code, latency and the start of the body
///   are printed;
/// - per service, whether its name (`unisync-user-service.unisync.internal`) is registered in
///   Cloud Map, where its callers look it up (``Verification/discovery(verbose:)``);
/// - the recent lines of each service's log group: `aws logs filter-log-events` (the guide's
///   `aws logs tail` exists only in aws CLI v2 and is used only when v2 is installed);
/// - when something is unhealthy: why stopped tasks stopped, and a short diagnosis of the common
///   causes with the likely fix; the run then fails (exit 1) with the reasons.
///
/// `run verify --follow` keeps polling (health, services, new log lines) until Ctrl-C.
/// Against a local emulator (a loopback `--endpoint-url`) the load balancer's DNS name is fake:
/// only a loopback `healthCheckUrl` is probed, never another host.
package struct VerifyStep: Step {
  package let id = "verify"
  package let section = "9"
  package let title = "Verify the deployment"
  package var runsByDefault: Bool { false }

  package init() {}

  /// How far back the log lines go.
  static let logWindowMinutes = 15

  package func actions(for deployment: Deployment) -> [Action] {
    let services = deployment.requestedServices.map(\.name)
    let url: Argument =
      deployment.healthCheckUrl.map { .text($0) }
      ?? "http://\(ref: "ALB_DNS")\(deployment.ecs.healthCheckPath)"
    var outline: [Procedure.Line] = [
      .command(Self.loadBalancer()),
      .command(Self.describeServices(services)),
      .note(
        "again every \(deployment.operations.healthCheckIntervalSeconds) s while the load balancer is provisioning or a service's deployment is in progress with fewer tasks running than desired"
      ),
      .command(Self.targetHealth()),
      .command(
        HealthProbe.command(
          url: url, timeout: Double(deployment.operations.healthCheckIntervalSeconds))),
      .note(
        "expect HTTP 200 and \"status\":\"UP\" from GET \(url), probed every \(deployment.operations.healthCheckIntervalSeconds) s; waiting and probing take up to \(deployment.operations.healthCheckTimeoutSeconds) s in all"
      ),
      .command(Self.version),
    ]
    // Whether each service's name is registered where its callers look it up.
    outline += services.map { .command(Verification.listInstances($0)) }
    for service in services {
      outline.append(
        .command(
          Self.logEvents(ECSStep.logGroup(deployment, service), since: .ref("START_TIME_MS"))))
    }
    outline.append(
      .note(
        "(with aws CLI v2: aws logs tail <LOG_GROUP> --since \(Self.logWindowMinutes)m instead)"))
    outline.append(.note("for a service short of tasks, why its tasks stopped:"))
    outline.append(.command(Self.stoppedTasks("<SERVICE>")))
    outline.append(.command(Self.describeTasks([.ref("STOPPED_TASK_ARNS")])))
    if deployment.request.follow {
      outline.append(
        .note("then again every \(deployment.operations.followIntervalSeconds) s until Ctrl-C"))
    }
    let procedure = Procedure(
      "verify the deployment", outline: outline, requires: ["ALB_ARN", "TG_ARN", "CLUSTER_ARN"]
    ) { context in
      try await Verification(context: context, deployment: deployment, services: services).run()
    }
    var verify = Action(
      name: "verify",
      summary: "health of the load balancer's targets, the services and \(url), recent log lines",
      effect: .read, command: Self.loadBalancer(), procedure: procedure, repeatable: true)
    // The exports it reads exist as soon as the cluster and the load balancer do, long before the
    // services (and before a rollout of the same run): in `run ecs verify` it would judge
    // services not made yet. It looks once the steps that make and change them have ended.
    verify.afterSteps = ["ecs", "update"]
    return [verify]
  }

  // MARK: - Commands

  static func loadBalancer() -> Command {
    .aws(
      "elbv2", "describe-load-balancers", "--load-balancer-arns", .ref("ALB_ARN"),
      "--query", "LoadBalancers[0].[DNSName,State.Code]", "--output", "text")
  }

  static func targetHealth() -> Command {
    .aws(
      "elbv2", "describe-target-health", "--target-group-arn", .ref("TG_ARN"), "--output", "json")
  }

  static func describeServices(_ services: [String]) -> Command {
    .aws(
      ["ecs", "describe-services", "--cluster", .ref("CLUSTER_ARN"), "--services"]
        + services.map { Argument.text($0) } + ["--output", "json"])
  }

  static func stoppedTasks(_ service: String) -> Command {
    .aws(
      "ecs", "list-tasks", "--cluster", .ref("CLUSTER_ARN"), "--service-name", .text(service),
      "--desired-status", "STOPPED", "--output", "json")
  }

  static func describeTasks(_ tasks: [Argument]) -> Command {
    .aws(
      ["ecs", "describe-tasks", "--cluster", .ref("CLUSTER_ARN"), "--tasks"] + tasks + [
        "--output", "json",
      ])
  }

  static let version = Command(tool: "aws", arguments: ["--version"])

  static func logEvents(_ group: String, since: Argument) -> Command {
    .aws(
      "logs", "filter-log-events", "--log-group-name", .text(group), "--start-time", since,
      "--output", "json")
  }

  static func tail(_ group: String) -> Command {
    .aws("logs", "tail", .text(group), "--since", "\(logWindowMinutes)m", "--format", "short")
  }

  // MARK: - Diagnosis

  /// Likely causes and fixes of what AWS says about stopped tasks, targets and the probe.
  static let diagnoses: [(pattern: String, advice: String)] = [
    (
      "ResourceInitializationError",
      "the task could not fetch its secrets or registry credentials before starting: the private subnets need a route to the internet (the network step's NAT gateway and private route table) or VPC endpoints for Secrets Manager and ECR, and the execution role needs secretsmanager:GetSecretValue on the secrets (the ecs step's SecretsManagerAccess policy)"
    ),
    (
      "CannotPullContainerError",
      "the image could not be pulled: check that the tag exists in the repository (push it with 'runbook run update --tag TAG'), that the private subnets reach ECR (NAT gateway or VPC endpoints), and that the execution role has AmazonECSTaskExecutionRolePolicy"
    ),
    (
      "Essential container in task exited",
      "the application itself stopped: read its log lines below; a database service often stops when it cannot reach RDS (the databases of guide 3.3 must exist, RDS_SG must admit ECS_SG)"
    ),
    (
      "OutOfMemory",
      "the container ran out of memory: raise ecs.memory in the configuration and update"
    ),
    (
      "Target.ResponseCodeMismatch",
      "the health check path answers another status than 200: check ecs.healthCheckPath (the application must serve it, e.g. Spring Boot actuator's /actuator/health)"
    ),
    (
      "Target.Timeout",
      "the load balancer gets no answer from the task: ECS_SG must admit ALB_SG on the container port (the security step), or the application starts slowly (raise ecs.healthCheckGracePeriodSeconds)"
    ),
    (
      "Target.FailedHealthChecks",
      "the task fails the load balancer's health checks: read its log lines below, and check the health check path and port"
    ),
    (
      "Elb.InitialHealthChecking", "health checks are only starting: wait a minute and verify again"
    ),
    (
      "Target.NotInUse",
      "the target group is not used by the listener, or the target's zone is not one of the load balancer's"
    ),
    (
      "Target.DeregistrationInProgress",
      "the target is being drained (a deployment is replacing it)"
    ),
    (
      "HTTP 503",
      "the load balancer has no healthy target to send the request to: see the targets and stopped tasks above"
    ),
    (
      "HTTP 502", "the target closed the connection or answered badly: read the gateway's log lines"
    ),
    ("HTTP 504", "the target answered too slowly: read the gateway's log lines"),
    (
      "no answer",
      "nothing answered at the health URL: the ALB security group must admit port 80 from this machine, a new DNS name can take a few minutes to resolve, or (locally) the health server is not running"
    ),
  ]

  /// The advice for every known cause mentioned in `texts`, each once.
  static func diagnose(_ texts: [String]) -> [String] {
    diagnoses.filter { entry in texts.contains { $0.contains(entry.pattern) } }
      .map { "\($0.pattern): \($0.advice)" }
  }
}
