using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Gateway.Fuzz.Tests;

/// <summary>
/// The fuzz run's log sink: formats every line at Information and above (so formatting of what
/// clients sent is exercised too), counts warnings by event, and keeps only errors, so that a
/// run of many thousand refused connections does not grow the heap it is measuring.
/// </summary>
internal sealed class FuzzLogProvider : ILoggerProvider
{
    private const int MaxKept = 200;
    private readonly ConcurrentDictionary<string, int> _warnings = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<LogEntry> _errors = new();
    private int _errorCount;
    private int _knownRaces;

    public int ErrorCount => Volatile.Read(ref _errorCount);

    public IEnumerable<LogEntry> Errors => _errors;

    public IReadOnlyDictionary<string, int> Warnings => _warnings;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    /// <summary>Errors from MQTTnet's session-disposal race, counted and not kept.</summary>
    public int KnownRaces => Volatile.Read(ref _knownRaces);

    /// <summary>
    /// MQTTnet 5.2 disposes a clean session's subscription lock (a ReaderWriterLockSlim) when
    /// its connection ends, while another thread (a SUBSCRIBE still being handled, or a message
    /// being fanned out to sessions) may hold or wait for it: the disposal throws
    /// SynchronizationLockException out of the connection handler, or the other thread gets
    /// ObjectDisposedException. Rare, timing-dependent, and inside MQTTnet; reported with the
    /// fuzz harness, counted here so that it does not make the bounded run flaky.
    /// </summary>
    public static bool IsKnownMqttnetRace(LogEntry entry) =>
        entry.Exception is SynchronizationLockException or ObjectDisposedException &&
        entry.Exception.StackTrace?.Contains("MQTTnet.Server.Internal.MqttClientSubscriptionsManager", StringComparison.Ordinal) == true;

    private void Add(LogEntry entry)
    {
        if (entry.Level >= LogLevel.Error && IsKnownMqttnetRace(entry))
        {
            Interlocked.Increment(ref _knownRaces);
        }
        else if (entry.Level >= LogLevel.Error)
        {
            if (Interlocked.Increment(ref _errorCount) <= MaxKept)
            {
                _errors.Enqueue(entry);
            }
        }
        else if (entry.Level == LogLevel.Warning)
        {
            _warnings.AddOrUpdate($"{entry.Category}[{entry.EventId.Id}]", 1, static (_, n) => n + 1);
        }
    }

    private sealed class Logger(FuzzLogProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var message = formatter(state, exception);
            if (logLevel >= LogLevel.Warning)
            {
                provider.Add(new LogEntry(category, logLevel, eventId, message, exception));
            }
        }
    }
}
