using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Gateway.Host;

/// <summary>
/// <c>/metrics</c> in the Prometheus text format, version 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/): the gateway's own meters
/// (<c>Gateway.*</c>, created through this host's <see cref="IMeterFactory"/>, so two gateways
/// in one process never mix), Kestrel's (connections on every listener, MQTT's included) and
/// the runtime's <c>System.Runtime</c> (CPU, memory, GC, thread pool). Names follow
/// OpenTelemetry's mapping to Prometheus: dots become underscores, the unit is spelled out
/// (<c>_seconds</c>, <c>_bytes</c>), counters end in <c>_total</c>; tags become labels.
/// Observable instruments are read at each scrape; the rest are summed as they are recorded.
/// </summary>
internal sealed class PrometheusMetrics : IDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private const string KestrelMeter = "Microsoft.AspNetCore.Server.Kestrel";
    private const string RuntimeMeter = "System.Runtime"; // one per process

    // The runtime declares these as counters, but they go down as well as up: exported as
    // gauges, so that rate() is never applied to them.
    private static readonly string[] MisdeclaredCounters = ["dotnet.thread_pool.thread.count", "dotnet.thread_pool.queue.length"];

    private readonly MeterListener _listener = new();
    private readonly IMeterFactory _meters;
    private readonly Lock _scrape = new();
    private readonly Lock _instrumentsLock = new();
    private readonly List<Family> _families = []; // in publication order

    public PrometheusMetrics(IMeterFactory meters)
    {
        _meters = meters;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (!Wanted(instrument.Meter))
            {
                return;
            }

            var family = new Family(instrument);
            lock (_instrumentsLock)
            {
                _families.Add(family);
            }

            listener.EnableMeasurementEvents(instrument, family);
        };
        _listener.MeasurementsCompleted = (_, state) =>
        {
            lock (_instrumentsLock)
            {
                _families.Remove((Family)state!);
            }
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((Family)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, value, tags, state) => ((Family)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<short>(static (_, value, tags, state) => ((Family)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<byte>(static (_, value, tags, state) => ((Family)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) => ((Family)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<float>(static (_, value, tags, state) => ((Family)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<decimal>(static (_, value, tags, state) => ((Family)state!).Record((double)value, tags));
        _listener.Start();
    }

    /// <summary>Reads every observable instrument and renders all of them.</summary>
    public string Scrape()
    {
        lock (_scrape)
        {
            Family[] families;
            lock (_instrumentsLock)
            {
                families = [.. _families];
            }

            foreach (var family in families)
            {
                family.BeginScrape();
            }

            _listener.RecordObservableInstruments();
            // By name: the text format wants each metric's lines together, and instruments of
            // two meters may share a name.
            Array.Sort(families, static (a, b) => string.CompareOrdinal(a.Name, b.Name));
            var text = new StringBuilder(4096);
            var written = new HashSet<string>(StringComparer.Ordinal);
            foreach (var family in families)
            {
                family.WriteTo(text, written);
            }

            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    private bool Wanted(Meter meter) =>
        (meter.Scope == _meters && (meter.Name.StartsWith("Gateway.", StringComparison.Ordinal) || meter.Name == KestrelMeter))
        || meter.Name == RuntimeMeter;

    /// <summary>One instrument: its Prometheus name and type, and a value per label set.</summary>
    private sealed class Family
    {
        private readonly Lock _sync = new();
        private readonly Dictionary<string, double> _values = new(StringComparer.Ordinal); // labels → sum, or last value
        private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal); // histograms: labels → count
        private readonly Instrument _instrument;
        private readonly Kind _kind;
        private readonly bool _cumulative; // each measurement is the whole value, not an increment

        public Family(Instrument instrument)
        {
            _instrument = instrument;
            _kind = KindOf(instrument);
            _cumulative = instrument.IsObservable || IsGauge(instrument);
            Name = NameOf(instrument, _kind);
        }

        public string Name { get; }

        private enum Kind
        {
            Counter, // monotonic: observed totals, or the sum of what was added
            Gauge, // up-down sums and last values
            Summary, // a histogram as _sum and _count
        }

        // Observable instruments report whole values at each scrape: what is not reported now is gone.
        public void BeginScrape()
        {
            if (_instrument.IsObservable)
            {
                lock (_sync)
                {
                    _values.Clear();
                }
            }
        }

        // Under a listener callback; no instrument in the gateway records per message, so a
        // label string per measurement with tags costs nothing that matters.
        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = tags.IsEmpty ? string.Empty : Labels(tags);
            lock (_sync)
            {
                if (_kind == Kind.Summary)
                {
                    _counts[labels] = _counts.GetValueOrDefault(labels) + 1;
                }

                _values[labels] = _cumulative ? value : _values.GetValueOrDefault(labels) + value;
            }
        }

        public void WriteTo(StringBuilder text, HashSet<string> written)
        {
            lock (_sync)
            {
                if (_values.Count == 0)
                {
                    return;
                }

                if (written.Add(Name))
                {
                    if (!string.IsNullOrEmpty(_instrument.Description))
                    {
                        text.Append("# HELP ").Append(Name).Append(' ');
                        AppendHelp(text, _instrument.Description);
                        text.Append('\n');
                    }

                    text.Append("# TYPE ").Append(Name).Append(' ').Append(_kind switch
                    {
                        Kind.Counter => "counter",
                        Kind.Gauge => "gauge",
                        _ => "summary",
                    }).Append('\n');
                }

                foreach (var (labels, value) in _values)
                {
                    if (_kind == Kind.Summary)
                    {
                        AppendSample(text, Name + "_sum", labels, value);
                        AppendSample(text, Name + "_count", labels, _counts.GetValueOrDefault(labels));
                    }
                    else
                    {
                        AppendSample(text, Name, labels, value);
                    }
                }
            }
        }

        private static Kind KindOf(Instrument instrument) => GenericDefinition(instrument) switch
        {
            _ when instrument.Meter.Name == RuntimeMeter && Array.IndexOf(MisdeclaredCounters, instrument.Name) >= 0 => Kind.Gauge,
            { } t when t == typeof(Counter<>) || t == typeof(ObservableCounter<>) => Kind.Counter,
            { } t when t == typeof(Histogram<>) => Kind.Summary,
            _ => Kind.Gauge,
        };

        private static bool IsGauge(Instrument instrument) => GenericDefinition(instrument) == typeof(Gauge<>);

        private static Type? GenericDefinition(Instrument instrument) =>
            instrument.GetType() is { IsGenericType: true } type ? type.GetGenericTypeDefinition() : null;

        // https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/#metric-metadata
        private static string NameOf(Instrument instrument, Kind kind)
        {
            var name = Sanitize(instrument.Name, allowColon: true);
            var unit = instrument.Unit switch
            {
                "s" => "seconds",
                "ms" => "milliseconds",
                "By" => "bytes",
                "1" when kind == Kind.Gauge => "ratio",
                null or "" or "1" => null,
                { } other when other.StartsWith('{') => null, // an annotation such as {message}: a count, no unit
                { } other => Sanitize(other, allowColon: false),
            };
            if (unit is not null && !name.EndsWith("_" + unit, StringComparison.Ordinal))
            {
                name += "_" + unit;
            }

            return kind == Kind.Counter && !name.EndsWith("_total", StringComparison.Ordinal) ? name + "_total" : name;
        }
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var text = new StringBuilder();
        foreach (var (key, value) in tags)
        {
            if (value is null)
            {
                continue;
            }

            text.Append(text.Length == 0 ? '{' : ',').Append(Sanitize(key, allowColon: false)).Append("=\"");
            foreach (var c in Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty)
            {
                _ = c switch
                {
                    '\\' => text.Append(@"\\"),
                    '"' => text.Append("\\\""),
                    '\n' => text.Append(@"\n"),
                    _ => text.Append(c),
                };
            }

            text.Append('"');
        }

        return text.Length == 0 ? string.Empty : text.Append('}').ToString();
    }

    private static void AppendSample(StringBuilder text, string name, string labels, double value)
    {
        text.Append(name).Append(labels).Append(' ');
        if (double.IsNaN(value))
        {
            text.Append("NaN");
        }
        else if (double.IsInfinity(value))
        {
            text.Append(value > 0 ? "+Inf" : "-Inf");
        }
        else
        {
            text.Append(value.ToString("R", CultureInfo.InvariantCulture));
        }

        text.Append('\n');
    }

    // HELP text escapes backslash and line feed only.
    private static void AppendHelp(StringBuilder text, string help)
    {
        foreach (var c in help)
        {
            _ = c switch
            {
                '\\' => text.Append(@"\\"),
                '\n' => text.Append(@"\n"),
                _ => text.Append(c),
            };
        }
    }

    // Metric names are [a-zA-Z_:][a-zA-Z0-9_:]*, label names the same without ':'.
    private static string Sanitize(string name, bool allowColon)
    {
        var text = new StringBuilder(name.Length + 1);
        foreach (var c in name)
        {
            text.Append(char.IsAsciiLetterOrDigit(c) || c == '_' || (allowColon && c == ':') ? c : '_');
        }

        if (text.Length == 0 || char.IsAsciiDigit(text[0]))
        {
            text.Insert(0, '_');
        }

        return text.ToString();
    }
}
