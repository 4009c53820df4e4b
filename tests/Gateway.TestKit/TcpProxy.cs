using System.Net;
using System.Net.Sockets;

namespace Gateway.TestKit;

/// <summary>What the proxy does to the connections passing through it.</summary>
public enum ProxyMode
{
    Forward,

    /// <summary>Stops moving bytes either way without closing anything (no FIN, no RST): a dead NAT or radio link.</summary>
    Blackhole,

    /// <summary>Forwards everything except MQTT PUBACK packets from the broker: a broker that withholds confirmations.</summary>
    DropPubacks,

    /// <summary>Closes every new connection at once: a cloud that is down.</summary>
    Refuse,
}

/// <summary>A loopback TCP proxy between the gateway's uplink and the cloud broker.</summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _sockets = [];
    private readonly Task _accepting;
    private volatile ProxyMode _mode;
    private int _connections;

    public TcpProxy(int targetPort)
    {
        _target = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string Url => $"mqtt://127.0.0.1:{Port}";

    /// <summary>Connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Applies to connections open now and later ones; a blackholed connection stays dead, new ones forward again after <see cref="Mode"/> is reset.</summary>
    public ProxyMode Mode
    {
        get => _mode;
        set => _mode = value;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_sockets)
        {
            foreach (var socket in _sockets)
            {
                socket.Dispose();
            }
        }

        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptSocketAsync(_stop.Token);
            Interlocked.Increment(ref _connections);
            if (_mode == ProxyMode.Refuse)
            {
                client.Dispose();
                continue;
            }

            var server = new Socket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await server.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            }
            catch (SocketException)
            {
                client.Dispose();
                server.Dispose();
                continue;
            }

            lock (_sockets)
            {
                _sockets.Add(client);
                _sockets.Add(server);
            }

            var dead = new StrongBox<bool>();
            _ = PumpAsync(client, server, fromBroker: false, dead);
            _ = PumpAsync(server, client, fromBroker: true, dead);
        }
    }

    private sealed class StrongBox<T>
    {
        public T? Value { get; set; }
    }

    private async Task PumpAsync(Socket from, Socket to, bool fromBroker, StrongBox<bool> dead)
    {
        var buffer = new byte[64 * 1024];
        var packets = new MqttPacketSplitter();
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    if (!dead.Value)
                    {
                        to.Shutdown(SocketShutdown.Send);
                    }

                    return;
                }

                if (_mode == ProxyMode.Blackhole || dead.Value)
                {
                    dead.Value = true; // this connection never recovers, as with a lost NAT entry
                    continue;
                }

                if (fromBroker && _mode == ProxyMode.DropPubacks)
                {
                    foreach (var packet in packets.Split(buffer.AsSpan(0, read)))
                    {
                        if ((packet[0] >> 4) != 4)
                        {
                            await to.SendAsync(packet, _stop.Token);
                        }
                    }

                    continue;
                }

                packets.Reset();
                await to.SendAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Either side went away.
        }
    }

    // Cuts the broker's byte stream into whole MQTT packets (fixed header + remaining length).
    private sealed class MqttPacketSplitter
    {
        private readonly List<byte> _pending = [];

        public void Reset() => _pending.Clear();

        public List<byte[]> Split(ReadOnlySpan<byte> data)
        {
            _pending.AddRange(data);
            var packets = new List<byte[]>();
            while (true)
            {
                int length = 0, multiplier = 1, index = 1;
                var complete = false;
                while (index < _pending.Count && index <= 4)
                {
                    var b = _pending[index++];
                    length += (b & 0x7F) * multiplier;
                    multiplier *= 128;
                    if ((b & 0x80) == 0)
                    {
                        complete = true;
                        break;
                    }
                }

                if (!complete || _pending.Count < index + length)
                {
                    return packets;
                }

                packets.Add([.. _pending.GetRange(0, index + length)]);
                _pending.RemoveRange(0, index + length);
            }
        }
    }
}
