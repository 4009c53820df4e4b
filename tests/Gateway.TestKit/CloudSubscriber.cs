using System.Globalization;

namespace Gateway.TestKit;

/// <summary>
/// mosquitto_sub at the cloud broker with a persistent session (it reconnects by itself when the
/// broker restarts), counting numbered payloads: what arrived, duplicates, and order.
/// </summary>
public sealed class CloudSubscriber : IAsyncDisposable
{
    private readonly ExternalProcess _process;

    private CloudSubscriber(ExternalProcess process) => _process = process;

    public static async Task<CloudSubscriber> StartAsync(MosquittoBroker broker, string filter)
    {
        // stdbuf: mosquitto_sub buffers stdout when it is not a terminal.
        var process = ExternalProcess.Start("stdbuf",
        [
            "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", broker.Port.ToString(CultureInfo.InvariantCulture),
            "-V", "mqttv311", "-q", "1", "-c", "-i", "cloud-counter-" + Guid.NewGuid().ToString("N")[..8],
            "-t", filter, "-v", "-d",
        ]);
        await process.WaitForOutputAsync("SUBACK");
        return new CloudSubscriber(process);
    }

    /// <summary>Every "topic payload" line received so far, in order.</summary>
    public List<(string Topic, string Payload)> Messages
    {
        get
        {
            var messages = new List<(string, string)>();
            foreach (var line in _process.Output.Split('\n'))
            {
                var text = line.TrimEnd('\r');
                if (text.Length == 0 || text.StartsWith("Client ", StringComparison.Ordinal) || text.StartsWith("Subscribed", StringComparison.Ordinal))
                {
                    continue; // -d debug lines
                }

                var space = text.IndexOf(' ', StringComparison.Ordinal);
                messages.Add(space < 0 ? (text, string.Empty) : (text[..space], text[(space + 1)..]));
            }

            return messages;
        }
    }

    /// <summary>The numbers received (payloads "n" or "prefix-n"), in arrival order.</summary>
    public List<int> Numbers()
    {
        var numbers = new List<int>();
        foreach (var (_, payload) in Messages)
        {
            var dash = payload.LastIndexOf('-');
            if (int.TryParse(dash < 0 ? payload : payload[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                numbers.Add(n);
            }
        }

        return numbers;
    }

    public async Task WaitForNumbersAsync(IEnumerable<int> expected, TimeSpan? timeout = null)
    {
        var wanted = expected.ToHashSet();
        try
        {
            await WaitFor.ConditionAsync(() => wanted.IsSubsetOf(Numbers()), $"{wanted.Count} numbered messages at the cloud broker", timeout ?? TimeSpan.FromSeconds(90));
        }
        catch (TimeoutException ex)
        {
            var missing = wanted.Except(Numbers()).Order().ToList();
            throw new TimeoutException($"{ex.Message}: {missing.Count} missing ({string.Join(",", missing.Take(20))}...)", ex);
        }
    }

    /// <summary>Asserts nothing was lost, duplicates stayed within the window, and first arrivals are in order.</summary>
    public void AssertComplete(IEnumerable<int> expected, int maxDuplicates)
    {
        var numbers = Numbers();
        var wanted = expected.ToList();
        var missing = wanted.Except(numbers).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException($"{missing.Count} messages never reached the cloud, first {string.Join(",", missing.Take(10))}");
        }

        var seen = new HashSet<int>();
        var firsts = new List<int>();
        foreach (var n in numbers)
        {
            if (seen.Add(n))
            {
                firsts.Add(n);
            }
        }

        var duplicates = numbers.Count - seen.Count;
        if (duplicates > maxDuplicates)
        {
            throw new InvalidOperationException($"{duplicates} duplicates, more than the in-flight window allows ({maxDuplicates})");
        }

        for (var i = 1; i < firsts.Count; i++)
        {
            if (firsts[i] < firsts[i - 1])
            {
                throw new InvalidOperationException($"order broken: {firsts[i]} arrived after {firsts[i - 1]}");
            }
        }
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
