using System.Net.Sockets;

namespace Gateway.TestKit;

/// <summary>A scripted peer: sends exactly the bytes a test gives it and reads what comes back.</summary>
public sealed class RawSocketClient : IAsyncDisposable
{
    private readonly Socket _socket;

    private RawSocketClient(Socket socket) => _socket = socket;

    public static async Task<RawSocketClient> ConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", port, TestContext.Timeout());
        return new RawSocketClient(socket);
    }

    public async Task SendAsync(ReadOnlyMemory<byte> bytes) => await _socket.SendAsync(bytes, SocketFlags.None, TestContext.Timeout());

    /// <summary>Sends as much as the server takes; returns false when the server closed or reset the connection.</summary>
    public async Task<bool> TrySendAsync(ReadOnlyMemory<byte> bytes)
    {
        try
        {
            await SendAsync(bytes);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Ends this side's input to the server (a FIN), as a client that goes away does; reading still works.</summary>
    public void EndInput() => _socket.Shutdown(SocketShutdown.Send);

    /// <summary>Reads until the server closes the connection; returns everything it sent.</summary>
    public async Task<byte[]> ReadUntilClosedAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TestContext.DefaultTimeout);
        var received = new MemoryStream();
        var buffer = new byte[8192];
        try
        {
            while (true)
            {
                var read = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (read == 0)
                {
                    return received.ToArray();
                }

                received.Write(buffer, 0, read);
            }
        }
        catch (SocketException)
        {
            return received.ToArray(); // reset counts as closed
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("The server did not close the connection");
        }
    }

    /// <summary>Reads one whole MQTT packet (fixed header, then as many bytes as it declares).</summary>
    public async Task<byte[]> ReadMqttPacketAsync()
    {
        var packet = new List<byte>(await ReadExactlyAsync(1));
        var remaining = 0;
        var multiplier = 1;
        byte next;
        do
        {
            next = (await ReadExactlyAsync(1))[0];
            packet.Add(next);
            remaining += (next & 0x7F) * multiplier;
            multiplier *= 128;
        }
        while ((next & 0x80) != 0);

        packet.AddRange(await ReadExactlyAsync(remaining));
        return [.. packet];
    }

    /// <summary>Reads what has arrived, up to the buffer's size; 0 once the server has closed.</summary>
    public async Task<int> ReadSomeAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            return await _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
        }
        catch (SocketException)
        {
            return 0; // reset counts as closed
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes.</summary>
    public async Task<byte[]> ReadExactlyAsync(int count)
    {
        var buffer = new byte[count];
        if (count == 0)
        {
            return buffer;
        }

        var offset = 0;
        using var cts = new CancellationTokenSource(TestContext.DefaultTimeout);
        while (offset < count)
        {
            var read = await _socket.ReceiveAsync(buffer.AsMemory(offset), SocketFlags.None, cts.Token);
            if (read == 0)
            {
                throw new IOException($"Connection closed after {offset} of {count} bytes");
            }

            offset += read;
        }

        return buffer;
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
