using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Gateway.TestKit;

/// <summary>Plays systemd's side of sd_notify: a Unix datagram socket that records each message.</summary>
public sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly Channel<string> _messages = Channel.CreateUnbounded<string>();
    private readonly CancellationTokenSource _stop = new();

    public NotifySocket()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"notify-{Guid.NewGuid():N}.sock");
        _socket.Bind(new UnixDomainSocketEndPoint(Path));
        _ = ReceiveLoopAsync();
    }

    public string Path { get; }

    /// <summary>The next message (one sd_notify datagram, possibly several lines).</summary>
    public async Task<string> NextAsync() =>
        await _messages.Reader.ReadAsync(TestContext.Timeout()).AsTask().WithTimeout("an sd_notify message");

    /// <summary>Reads messages until one contains <paramref name="text"/>; returns those read before it.</summary>
    public async Task<List<string>> UntilAsync(string text)
    {
        var before = new List<string>();
        while (true)
        {
            var message = await NextAsync();
            if (message.Contains(text, StringComparison.Ordinal))
            {
                return before;
            }

            before.Add(message);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        File.Delete(Path);
        _stop.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var read = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                _messages.Writer.TryWrite(Encoding.UTF8.GetString(buffer, 0, read));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            _messages.Writer.TryComplete();
        }
    }
}
