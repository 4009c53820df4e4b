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
    private int _maxInFlight;
    private int _grantedReceiveMaximum = -1;

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

    /// <summary>
    /// The most QoS 1/2 publishes a client had sent through the proxy in Forward mode that the
    /// broker had not yet acknowledged (PUBACK or PUBREC), over every connection.
    /// </summary>
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    /// <summary>Receive Maximum in the broker's last CONNACK: null with none seen or MQTT 3.1.1, 65,535 when an MQTT 5 broker leaves it out.</summary>
    public int? GrantedReceiveMaximum => Volatile.Read(ref _grantedReceiveMaximum) is >= 0 and var granted ? granted : null;

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
            var inFlight = new StrongBox<int>();
            _ = PumpAsync(client, server, fromBroker: false, dead, inFlight);
            _ = PumpAsync(server, client, fromBroker: true, dead, inFlight);
        }
    }

    private sealed class StrongBox<T>
    {
        public T? Value { get; set; }
    }

    private async Task PumpAsync(Socket from, Socket to, bool fromBroker, StrongBox<bool> dead, StrongBox<int> inFlight)
    {
        var buffer = new byte[64 * 1024];
        var packets = new MqttPacketSplitter();
        var counted = new MqttPacketSplitter();
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
                foreach (var packet in counted.Split(buffer.AsSpan(0, read)))
                {
                    Count(packet, fromBroker, inFlight);
                }

                await to.SendAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (SocketException) when (!dead.Value && !_stop.IsCancellationRequested)
        {
            // One side reset the connection (mosquitto does after refusing a publish with unread
            // data behind it): the other side is reset too, as it would be without the proxy.
            try
            {
                to.LingerState = new LingerOption(true, 0);
                to.Dispose();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Already gone.
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Either side went away.
        }
    }

    private void Count(byte[] packet, bool fromBroker, StrongBox<int> inFlight)
    {
        var type = packet[0] >> 4;
        if (!fromBroker && type == 3 && (packet[0] & 0x06) != 0)
        {
            int now;
            lock (inFlight)
            {
                now = ++inFlight.Value;
            }

            int max;
            while (now > (max = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, max) != max)
            {
            }
        }
        else if (fromBroker && type is 4 or 5)
        {
            lock (inFlight)
            {
                inFlight.Value--;
            }
        }
        else if (fromBroker && type == 2)
        {
            Volatile.Write(ref _grantedReceiveMaximum, ReceiveMaximum(packet));
        }
    }

    // -1 for a CONNACK without properties (MQTT 3.1.1).
    private static int ReceiveMaximum(byte[] connack)
    {
        var i = 1;
        var remaining = ReadVariableInt(connack, ref i);
        if (remaining <= 2)
        {
            return -1;
        }

        i += 2; // acknowledge flags, reason code
        var end = ReadVariableInt(connack, ref i);
        end += i;
        while (i < end)
        {
            var id = connack[i++];
            switch (id)
            {
                case 0x21:
                    return (connack[i] << 8) | connack[i + 1];
                case 0x01 or 0x17 or 0x19 or 0x24 or 0x25 or 0x28 or 0x29 or 0x2A:
                    i += 1;
                    break;
                case 0x13 or 0x22 or 0x23:
                    i += 2;
                    break;
                case 0x02 or 0x11 or 0x18 or 0x27:
                    i += 4;
                    break;
                case 0x26: // user property: two strings
                    i += 2 + ((connack[i] << 8) | connack[i + 1]);
                    i += 2 + ((connack[i] << 8) | connack[i + 1]);
                    break;
                default: // strings and binary data
                    i += 2 + ((connack[i] << 8) | connack[i + 1]);
                    break;
            }
        }

        return 65535; // MQTT 5 without the property: the protocol's default
    }

    private static int ReadVariableInt(byte[] data, ref int index)
    {
        int value = 0, shift = 0;
        byte b;
        do
        {
            b = data[index++];
            value |= (b & 0x7F) << shift;
            shift += 7;
        }
        while ((b & 0x80) != 0);
        return value;
    }

    // Cuts a byte stream into whole MQTT packets (fixed header + remaining length).
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
