using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Gateway.Storage;

/// <summary>
/// The store in /healthz: a data directory that takes no writes is unhealthy (the process does
/// not work; a restart may help). Free disk under the reserve and failing writes are degraded:
/// the gateway works through them, refusing what it cannot keep, and a restart would not cure
/// them, so they answer 503 without stopping the systemd watchdog.
/// </summary>
internal sealed class StoreHealthCheck(LiteDbMessageStore store, IOptions<StorageOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (DataDirectory.CheckWritable(options.Value.DataDirectory) is { } problem)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("data directory " + problem));
        }

        if (store.LowOnDisk)
        {
            return Task.FromResult(HealthCheckResult.Degraded($"free disk under the Storage:MinFreeMegabytes reserve ({options.Value.MinFreeMegabytes} MB); messages for durable queues are refused"));
        }

        return Task.FromResult(store.WriteFailure is { } failure
            ? HealthCheckResult.Degraded("writes are failing: " + failure)
            : HealthCheckResult.Healthy());
    }
}
