using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Gateway.Protocols.Mqtt;

/// <summary>Kestrel's connection, with MQTTnet reading through the <see cref="MqttPacketGuard"/>.</summary>
internal sealed class GuardedConnectionContext(ConnectionContext inner, MqttPacketGuard guard) : ConnectionContext
{
    private EndPoint? _remote;

    public override string ConnectionId
    {
        get => inner.ConnectionId;
        set => inner.ConnectionId = value;
    }

    public override IFeatureCollection Features => inner.Features;

    public override IDictionary<object, object?> Items
    {
        get => inner.Items;
        set => inner.Items = value;
    }

    public override IDuplexPipe Transport
    {
        get => guard;
        set => throw new NotSupportedException();
    }

    public override CancellationToken ConnectionClosed
    {
        get => inner.ConnectionClosed;
        set => inner.ConnectionClosed = value;
    }

    public override EndPoint? LocalEndPoint
    {
        get => inner.LocalEndPoint;
        set => inner.LocalEndPoint = value;
    }

    public override EndPoint? RemoteEndPoint
    {
        get => _remote ??= inner.RemoteEndPoint is IPEndPoint ip ? new MqttConnectionEndPoint(ip, guard.Output) : inner.RemoteEndPoint;
        set
        {
            inner.RemoteEndPoint = value;
            _remote = null;
        }
    }

    public override void Abort(ConnectionAbortedException abortReason) => inner.Abort(abortReason);

    public override void Abort() => inner.Abort();
}
