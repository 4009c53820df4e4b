using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Gateway.Host;

/// <summary>
/// Whether the gateway is actually working, from the health checks every module contributes
/// (router, storage, each protocol, the listeners). Backs /healthz and the systemd watchdog,
/// which read the same result: an unhealthy check is a problem (the process does not work; the
/// watchdog stops being fed and systemd restarts it); a degraded one is an alert (free disk
/// under the reserve, failing writes, retained messages not loaded), which a restart would not
/// cure: /healthz answers 503 but the watchdog stays fed.
/// </summary>
public sealed class GatewayHealth(HealthCheckService checks)
{
    public async Task<HealthReport> CheckAsync(CancellationToken cancellationToken)
    {
        var report = await checks.CheckHealthAsync(cancellationToken);
        var problems = new List<string>();
        var alerts = new List<string>();
        foreach (var (name, entry) in report.Entries)
        {
            var line = $"{name}: {entry.Description ?? entry.Exception?.Message ?? entry.Status.ToString()}";
            switch (entry.Status)
            {
                case HealthStatus.Unhealthy:
                    problems.Add(line);
                    break;
                case HealthStatus.Degraded:
                    alerts.Add(line);
                    break;
            }
        }

        return new HealthReport(problems, alerts);
    }
}

/// <summary>
/// The outcome of one health check: healthy when nothing is wrong. <paramref name="Problems"/>
/// mean the process does not work (a restart may help); <paramref name="Alerts"/> are conditions
/// it works through, that need an operator (a full disk).
/// </summary>
public sealed record HealthReport(IReadOnlyList<string> Problems, IReadOnlyList<string> Alerts)
{
    public bool Healthy => Problems.Count == 0 && Alerts.Count == 0;

    /// <summary>No problems (alerts aside): the systemd watchdog is fed.</summary>
    public bool Working => Problems.Count == 0;

    public override string ToString() => Healthy ? "healthy" : string.Join("; ", Problems.Concat(Alerts));
}
