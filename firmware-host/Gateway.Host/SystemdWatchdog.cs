using Microsoft.Extensions.Hosting.Systemd;

namespace Gateway.Host;

/// <summary>
/// Speaks sd_notify. .NET's <c>AddSystemd()</c> sends READY=1 and STOPPING=1 only when its
/// parent process is systemd; when <c>NOTIFY_SOCKET</c> is set but that check fails (a service
/// manager in a container, a notify proxy) this service sends them itself.
/// It also feeds the systemd watchdog (<c>WatchdogSec=</c> in the unit, <c>WATCHDOG_USEC</c> in the
/// environment) at half its interval, but only while <see cref="GatewayHealth"/> says the
/// gateway works (alerts such as a full disk, which a restart does not cure, keep it fed).
/// Health changes are reported as <c>STATUS=</c> lines, shown by
/// <c>systemctl status gateway</c>. https://www.freedesktop.org/software/systemd/man/sd_notify.html
/// </summary>
internal sealed class SystemdWatchdog(
    IServiceProvider services,
    IHostApplicationLifetime lifetime,
    GatewayHealth health,
    TimeProvider time,
    ILogger<SystemdWatchdog> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var notifier = services.GetService<ISystemdNotifier>();
        if (notifier is null && !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NOTIFY_SOCKET")))
        {
            notifier = new SystemdNotifier();
            await WhenStartedAsync(stoppingToken);
            notifier.Notify(ServiceState.Ready);
            var stopping = notifier;
            lifetime.ApplicationStopping.Register(() => stopping.Notify(ServiceState.Stopping));
        }

        if (notifier is null || !TryGetInterval(out var interval))
        {
            return;
        }

        HostLog.WatchdogEnabled(logger, interval);
        bool? wasHealthy = null;
        using var timer = new PeriodicTimer(interval / 2, time);
        do
        {
            var report = await health.CheckAsync(stoppingToken);
            if (report.Healthy != wasHealthy)
            {
                notifier.Notify(new ServiceState(report.Healthy ? "STATUS=healthy" : "STATUS=unhealthy: " + report));
                if (report.Healthy)
                {
                    HostLog.Healthy(logger);
                }
                else
                {
                    HostLog.Unhealthy(logger, report.ToString());
                }

                wasHealthy = report.Healthy;
            }

            if (report.Working)
            {
                notifier.Notify(new ServiceState("WATCHDOG=1")); // alerts (a full disk) are not cured by a restart
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private Task WhenStartedAsync(CancellationToken cancellationToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        return started.Task.WaitAsync(cancellationToken);
    }

    private static bool TryGetInterval(out TimeSpan interval)
    {
        interval = default;
        var pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (pid is not null && pid != Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            return false; // the watchdog is meant for another process
        }

        if (!long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), out var microseconds) || microseconds <= 0)
        {
            return false;
        }

        interval = TimeSpan.FromMicroseconds(microseconds);
        return true;
    }
}
