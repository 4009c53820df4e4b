using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using Gateway.Routing;

namespace Gateway.Uplinks.Tests;

/// <summary>
/// An <see cref="ICloudSink"/> driven by the test, no network: which endpoints connect (and with
/// what window), which are reachable for the return to the primary, and, per link, what the
/// "broker" answers to each publish.
/// </summary>
internal sealed class ScriptedSink : ICloudSink
{
    private readonly ConcurrentDictionary<string, bool> _up = new(StringComparer.Ordinal);
    private readonly Channel<ScriptedLink> _links = Channel.CreateUnbounded<ScriptedLink>();

    /// <summary>Every connect attempt, in order: the endpoint's text.</summary>
    public ConcurrentQueue<string> Attempts { get; } = new();

    /// <summary>The window a new link grants (MQTT 5 Receive Maximum).</summary>
    public int MaxUnconfirmed { get; set; } = int.MaxValue;

    /// <summary>Whether a new link confirms each publish as soon as it is sent.</summary>
    public bool AutoConfirm { get; set; }

    /// <summary>What a new link answers for a message (by body text) instead of confirming it, when AutoConfirm is on.</summary>
    public Func<string, PublishResult?>? Answer { get; set; }

    public void SetUp(string endpoint, bool up) => _up[endpoint] = up;

    /// <summary>Whether a connect to a down endpoint is told the credentials are refused.</summary>
    public bool RefuseCredentials { get; set; }

    public string RemoteAddress(GatewayMessage message) => "remote/" + message.RoutingKey;

    public Task<ConnectResult> ConnectAsync(UplinkEndpoint endpoint, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var name = endpoint.ToString();
        Attempts.Enqueue(name);
        if (!_up.GetValueOrDefault(name))
        {
            return Task.FromResult(RefuseCredentials
                ? ConnectResult.Unreachable(FailureKind.Unauthorized, "NotAuthorized")
                : ConnectResult.Unreachable(FailureKind.Transient, "connection refused"));
        }

        var link = new ScriptedLink(name, MaxUnconfirmed, AutoConfirm, Answer);
        _links.Writer.TryWrite(link);
        return Task.FromResult(ConnectResult.Connected(link));
    }

    public Task<bool> IsReachableAsync(UplinkEndpoint endpoint, CancellationToken cancellationToken) =>
        Task.FromResult(_up.GetValueOrDefault(endpoint.ToString()));

    /// <summary>The next link the forwarder connects.</summary>
    public async Task<ScriptedLink> NextLinkAsync() =>
        await _links.Reader.ReadAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
}

/// <summary>One scripted connection: records what is published, answers as told.</summary>
internal sealed class ScriptedLink(string endpoint, int maxUnconfirmed, bool autoConfirm, Func<string, PublishResult?>? answer) : ICloudLink
{
    private readonly TaskCompletionSource<string> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Channel<(long Sequence, string Body)> _published = Channel.CreateUnbounded<(long, string)>();
    private IPublishConfirmations? _confirmations;

    public string Endpoint { get; } = endpoint;

    public int MaxUnconfirmed { get; } = maxUnconfirmed;

    public string MaxUnconfirmedSource => "the scripted grant";

    public Task<string> Closed => _closed.Task;

    public bool Disposed { get; private set; }

    public Task<bool> StartAsync(CancellationToken cancellationToken) => Task.FromResult(!_closed.Task.IsCompleted);

    public void SetConfirmations(IPublishConfirmations? confirmations) => Volatile.Write(ref _confirmations, confirmations);

    public Task PublishAsync(long sequence, GatewayMessage message, CancellationToken cancellationToken)
    {
        var body = Encoding.UTF8.GetString(message.Body.Span);
        _published.Writer.TryWrite((sequence, body));
        if (autoConfirm)
        {
            Answer(sequence, answer?.Invoke(body) ?? PublishResult.Confirmed);
        }

        return Task.CompletedTask;
    }

    public bool IsLinkLoss(Exception exception) => exception is ObjectDisposedException;

    public bool Answer(long sequence, PublishResult result) =>
        Volatile.Read(ref _confirmations)?.TryComplete(sequence, result) ?? false;

    public int ConfirmThrough(long sequence) =>
        Volatile.Read(ref _confirmations)?.CompleteThrough(sequence, PublishResult.Confirmed) ?? 0;

    /// <summary>The next <paramref name="count"/> publishes, in the order they were sent.</summary>
    public async Task<List<(long Sequence, string Body)>> TakeAsync(int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var taken = new List<(long, string)>(count);
        while (taken.Count < count)
        {
            taken.Add(await _published.Reader.ReadAsync(timeout.Token));
        }

        return taken;
    }

    /// <summary>What was published and not yet taken.</summary>
    public List<(long Sequence, string Body)> Drain()
    {
        var taken = new List<(long, string)>();
        while (_published.Reader.TryRead(out var item))
        {
            taken.Add(item);
        }

        return taken;
    }

    public void Close(string reason) => _closed.TrySetResult(reason);

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        _closed.TrySetResult("disposed");
        return ValueTask.CompletedTask;
    }
}
