import Foundation
import RunbookEngine
import RunbookProcess

/// `runbook task run SERVICE -- CMD...`: an operator's one-off command, run as a Fargate task of
/// the task definition the service runs now (`describe-services`), in the service's network (the
/// private subnets, the ECS security group), by the same code as the migrations and guide 3.3
/// (``OneOffTask``). Its log lines are printed when it stops; its container's exit code becomes
/// the tool's. It keeps nothing in the checkpoint (``Engine/runOperation``).
package enum TaskRun {
  /// How the operator's task ended.
  package struct Outcome: Sendable {
    package var taskArn: String
    /// The container's exit code; nil when the task stopped without one (it never ran).
    package var exitCode: Int?
    /// `exit 3 (Essential container in task exited)`.
    package var summary: String
  }

  /// The task of `command` on `taskDefinition` in the container named after the service.
  static func task(
    _ deployment: Deployment, service: String, command: [String], taskDefinition: Argument
  )
    -> OneOffTask
  {
    var task = OneOffTask(
      taskDefinition: taskDefinition, container: service, command: command,
      subnets: deployment.network.subnets.filter { !$0.isPublic }.map { .ref($0.export) },
      securityGroup: .ref("ECS_SG"), logGroup: ECSStep.logGroup(deployment, service),
      purpose: "task", timeoutSeconds: deployment.ecs.deploymentTimeoutSeconds,
      pollSeconds: deployment.operations.deploymentPollSeconds,
      logLines: deployment.operations.logLines)
    task.showsLogs = true
    return task
  }

  /// Runs `command` as a one-off task of `service`'s current task definition and waits for it.
  /// - Throws: ``UsageError`` (an unknown service, an empty command, nothing deployed yet), and
  ///   what ``Engine/runOperation`` throws (a task that could not be started: ``StepFailure``).
  package static func run(
    _ engine: Engine<Deployment>, service: String, command: [String]
  ) async throws -> Outcome {
    let deployment = engine.deployment
    guard deployment.services.contains(where: { $0.name == service }) else {
      throw UsageError(
        "task run: '\(service)' is not a service of the configuration (services: \(deployment.services.map(\.name).joined(separator: ", ")))"
      )
    }
    guard !command.isEmpty, !command.contains(where: \.isEmpty) else {
      throw UsageError(
        "task run: give the command after the service: task run \(service) -- CMD...")
    }
    let subnets = deployment.network.subnets.filter { !$0.isPublic }.map(\.export)
    let outline: [Procedure.Line] =
      [.command(Rollout.describeService(service))]
      + task(
        deployment, service: service, command: command, taskDefinition: .ref("TASK_DEFINITION")
      )
      .outline
    return try await engine.runOperation(
      name: "task", action: "run",
      summary: "run '\(command.joined(separator: " "))' once as a task of \(service)",
      outline: outline, requires: ["CLUSTER_ARN", "ECS_SG"] + subnets,
      failure: { $0.exitCode == 0 ? nil : "task \(OneOffTask.short($0.taskArn)): \($0.summary)" }
    ) { context in
      let described = try await Rollout(context: context, deployment: deployment, service: service)
        .describe()
      guard let definition = described.taskDefinition else {
        throw ProcedureFailure("service \(service) names no task definition")
      }
      context.progress("\(service) runs \(Rollout.short(definition))")
      let ending = try await task(
        deployment, service: service, command: command, taskDefinition: .text(definition)
      ).run(context, memory: nil)
      return Outcome(taskArn: ending.taskArn, exitCode: ending.exitCode, summary: ending.summary)
    }
  }
}
