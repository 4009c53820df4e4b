namespace Gateway.Host;

/// <summary>Host log events: ids 100-199.</summary>
internal static partial class HostLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Gateway {Version} listening: {Listeners} ({HttpEndpoints}); data in {DataDirectory}; GC heap limit {HeapLimitMb} MB, memory budget {BudgetMb} MB; started in {StartupMs} ms")]
    public static partial void Started(ILogger logger, string version, string listeners, string httpEndpoints, string dataDirectory, long heapLimitMb, long budgetMb, long startupMs);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Gateway stopping")]
    public static partial void Stopping(ILogger logger);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "systemd watchdog enabled: interval {Interval}, fed while healthy")]
    public static partial void WatchdogEnabled(ILogger logger, TimeSpan interval);

    [LoggerMessage(EventId = 111, Level = LogLevel.Error, Message = "Gateway unhealthy, not feeding the watchdog: {Problems}")]
    public static partial void Unhealthy(ILogger logger, string problems);

    [LoggerMessage(EventId = 112, Level = LogLevel.Information, Message = "Gateway healthy")]
    public static partial void Healthy(ILogger logger);

    [LoggerMessage(EventId = 120, Level = LogLevel.Debug, Message = "Traffic stopped: GC memory returned, committed {BeforeMb} MB -> {AfterMb} MB (live heap {HeapMb} MB) in {Ms:F1} ms")]
    public static partial void MemoryTrimmed(ILogger logger, long beforeMb, long afterMb, long heapMb, double ms);
}
