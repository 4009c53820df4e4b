using Gateway.Mqtt;
using Gateway.Routing;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Protocol;

namespace Gateway.Uplinks.Mqtt;

/// <summary>The downlink rules: subscriptions at the cloud broker, and what arrives on them delivered to the local router.</summary>
internal sealed class MqttDownlink(string name, UplinkOptions options, bool isV5, IMessageRouter router, DownlinkCounters counters, ILogger logger, IRetainedMessageSink? retained)
{
    // False when the link dropped or timed out mid-subscribe: the session ends and the next one subscribes again.
    public async Task<bool> SubscribeAsync(IMqttClient client, CancellationToken cancellationToken)
    {
        foreach (var rule in options.Downlink)
        {
            var filter = new MqttTopicFilterBuilder()
                .WithTopic(rule.Filter)
                .WithQualityOfServiceLevel((MqttQualityOfServiceLevel)rule.Qos)
                .WithNoLocal(isV5) // the broker must not echo what this uplink forwards
                .WithRetainAsPublished(isV5) // a live retained message stays retained here (3.1.1 marks only those sent on subscribing)
                .Build();
            try
            {
                var result = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter).Build(), cancellationToken);
                var code = result.Items.Count > 0 ? (int)result.Items.First().ResultCode : 0x80;
                if (code >= 0x80)
                {
                    UplinkLog.SubscribeFailed(logger, name, rule.Filter, result.Items.Count > 0 ? result.Items.First().ResultCode.ToString() : "no answer");
                }
            }
            catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException)
            {
                if (!cancellationToken.IsCancellationRequested)
                {
                    UplinkLog.SubscribeInterrupted(logger, name, rule.Filter, ex.Message);
                }

                return false;
            }
        }

        return true;
    }

    public async Task OnReceivedAsync(MqttApplicationMessageReceivedEventArgs e)
    {
        var topic = e.ApplicationMessage.Topic;
        if (topic == CheckedInput.DroppedTopic)
        {
            // In place of a message over MaxPacketSize, dropped (and counted) as it came in.
            e.ReasonCode = MqttApplicationMessageReceivedReasonCode.ImplementationSpecificError;
            return;
        }

        foreach (var rule in options.Downlink)
        {
            if (!MqttTopicFilterComparer.Compare(topic, rule.Filter).Equals(MqttTopicFilterCompareResult.IsMatch))
            {
                continue;
            }

            var local = rule.Prefix + MqttCloudSink.Strip(topic, rule.StripPrefix);
            try
            {
                var received = MqttMessageMapper.ToGateway(e.ApplicationMessage, name, null);
                var message = new GatewayMessage(MessageRouter.AmqTopic, MqttTopics.ToRoutingKey(local), received.Body, received.Properties, new MessageOrigin(CloudForwarder.OriginProtocol, name, null));
                if (e.ApplicationMessage.Retain && retained is not null)
                {
                    // Retained at the cloud, retained here: a local subscriber that comes later gets it too.
                    await retained.RetainAsync(local, message, CancellationToken.None);
                }

                var routed = await router.PublishAsync(message, CancellationToken.None); // PUBACK to the cloud once it is routed (and stored)
                if (routed.Status == RouteStatus.Rejected)
                {
                    // A durable queue it routes to refused it (full with reject-publish, low disk):
                    // answered as a local publisher of the same MQTT version would be, never
                    // acknowledged as kept.
                    counters.AddRefused();
                    UplinkLog.DownlinkRefused(logger, name, topic, local);
                    if (isV5)
                    {
                        e.ReasonCode = MqttApplicationMessageReceivedReasonCode.QuotaExceeded;
                    }
                    else
                    {
                        e.ProcessingFailed = true;
                    }

                    return;
                }

                counters.AddDelivered();
            }
#pragma warning disable CA1031 // Whatever the store or router throws, the cloud must not get a PUBACK for it.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                counters.AddFailed();
                UplinkLog.DownlinkFailed(logger, name, topic, ex);
                e.ProcessingFailed = true;
            }

            return;
        }
    }
}
