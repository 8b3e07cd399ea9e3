import Foundation
import RunbookEngine
import RunbookProcess

/// A service's migration (`services[].migration`), run by `run update` before any service is
/// rolled: a one-off task (``OneOffTask``) of the service's **new** task definition revision, so
/// with the new image, its container's command replaced by the migration's, in the private
/// subnets with the ECS security group. The update goes on only when it exited 0.
///
/// Each revision is migrated once: its task is remembered in the checkpoint
/// (`MIGRATION_TASK_<SERVICE>`, keyed by the revision and the command), so a run killed after
/// `run-task` follows that task when resumed, a failed one is run again under the next attempt,
/// and a revision whose migration succeeded is not migrated again.
enum Migration {
  /// `MIGRATION_TASK_USER_SERVICE`.
  static func taskExport(_ service: String) -> String {
    "MIGRATION_TASK_" + exportSuffix(service)
  }

  /// The one-off task of a service's migration, on `taskDefinition`.
  static func task(
    _ deployment: Deployment, _ service: Deployment.Service, command: [String],
    taskDefinition: Argument
  ) -> OneOffTask {
    OneOffTask(
      taskDefinition: taskDefinition, container: service.name, command: command,
      subnets: deployment.network.subnets.filter { !$0.isPublic }.map { .ref($0.export) },
      securityGroup: .ref("ECS_SG"), logGroup: ECSStep.logGroup(deployment, service.name),
      purpose: "migrate", timeoutSeconds: deployment.ecs.deploymentTimeoutSeconds,
      pollSeconds: deployment.operations.deploymentPollSeconds,
      logLines: deployment.operations.logLines)
  }

  /// The services of `names` that have a migration, in the configuration's order.
  static func services(_ deployment: Deployment, _ names: [String]) -> [Deployment.Service] {
    deployment.services.filter { names.contains($0.name) && $0.migration != nil }
  }

  /// What `plan update` shows of the migrations, before the first `update-service`.
  static func outline(_ deployment: Deployment, _ names: [String]) -> [Procedure.Line] {
    services(deployment, names).flatMap { service -> [Procedure.Line] in
      let task = task(
        deployment, service, command: service.migration ?? [],
        taskDefinition: .ref("NEW_TASK_DEFINITION"))
      return [
        .note(
          "before any service is updated, the migration of \(service.name) (once per new revision), as a one-off task of <NEW_TASK_DEFINITION>; unless it exits 0, no service is updated:"
        )
      ] + task.outline
    }
  }

  /// Runs the migration of `service` on the revision `taskDefinition` (or finds the run an
  /// interrupted update started). Throws ``ProcedureFailure`` unless it exited 0.
  static func run(
    _ context: ProcedureContext, _ deployment: Deployment, _ service: Deployment.Service,
    taskDefinition: String
  ) async throws {
    guard let command = service.migration else { return }
    context.progress(
      "[\(service.name)] migration on \(Rollout.short(taskDefinition)): \(command.joined(separator: " "))"
    )
    let task = task(deployment, service, command: command, taskDefinition: .text(taskDefinition))
    let memory = OneOffTask.Memory(
      export: taskExport(service.name),
      key: ([taskDefinition] + command).joined(separator: "\n"), remembersSuccess: true)
    let ending = try await task.run(context, memory: memory)
    guard ending.succeeded else {
      throw ProcedureFailure(
        "the migration of \(service.name) (task \(OneOffTask.short(ending.taskArn)) of \(Rollout.short(taskDefinition))) failed: \(ending.summary); its log lines are above (\(task.logGroup)). No service was updated: fix the cause and rerun"
      )
    }
    context.progress("[\(service.name)] migration done: exit 0")
  }
}
