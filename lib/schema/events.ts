/**
 * Typed events: one interface per hook, discriminated by `hook`. Field names are the proto
 * names (snake_case), exactly as in the JSON form.
 *
 * @module
 */

/** `google.protobuf.Timestamp`: when the broker produced the event. */
export interface Timestamp {
  /** Seconds since the Unix epoch (int64, exact). */
  seconds: bigint;
  /** Nanoseconds within the second. */
  nanos: number;
}

/** The ACL entry that matched (empty strings when none, e.g. for a refused subscription). */
export interface MatchedAcl {
  /** ACL name. */
  name: string;
  /** ACL pattern. */
  pattern: string;
}

/** One topic of a subscription; `qos` 128 means the subscription was refused. */
export interface TopicInfo {
  /** Topic filter. */
  topic: string;
  /** Granted QoS, or 128 when refused. */
  qos: number;
  /** The matching ACL. */
  matched_acl: MatchedAcl;
}

/** Disconnect reason names (`Reason` enum). */
export type ReasonName =
  | "REASON_UNSPECIFIED"
  | "REASON_NOT_AUTHORIZED"
  | "REASON_NORMAL_DISCONNECT"
  | "REASON_SESSION_TAKEN_OVER"
  | "REASON_ADMINISTRATIVE_ACTION"
  | "REASON_DISCONNECT_KEEP_ALIVE"
  | "REASON_DISCONNECT_MIGRATION"
  | "REASON_BAD_AUTHENTICATION_METHOD"
  | "REASON_REMOTE_SESSION_TAKEN_OVER"
  | "REASON_MQTT_CLIENT_DISCONNECT"
  | "REASON_RECEIVE_MAX_EXCEEDED"
  | "REASON_PROTOCOL_ERROR"
  | "REASON_PUBLISH_AUTH_ERROR"
  | "REASON_INVALID_PUBREC_ERROR"
  | "REASON_INVALID_PUBCOMP_ERROR"
  | "REASON_UNEXPECTED_FRAME_TYPE"
  | "REASON_EXIT_SIGNAL_RECEIVED"
  | "REASON_TCP_CLOSED";

/** Registration failure reason names (`RegistrationFailureReason` enum). */
export type RegistrationFailureReasonName =
  | "REASON_UNSPECIFIED"
  | "REASON_NO_MATCHING_HOOK_FOUND"
  | "REASON_INVALID_CREDENTIALS"
  | "REASON_NOT_AUTHORIZED"
  | "REASON_STALE_REQUEST"
  | "REASON_INVALID_SIGNATURE"
  | "REASON_USERNAME_RID_MISMATCH";

/** The field every event has. */
export interface EventBase {
  /** When the broker produced the event. */
  timestamp: Timestamp;
}

/** A client connected (CONNECT accepted). */
export interface OnRegisterEvent extends EventBase {
  /** Discriminator. */
  hook: "on_register";
  /** Client IP as text. */
  peer_addr: string;
  /** Client TCP port. */
  peer_port: number;
  /** Username, `""` when none. */
  username: string;
  /** Mountpoint, `""` for the default. */
  mountpoint: string;
  /** MQTT client id. */
  client_id: string;
  /** MQTT 5 user properties of CONNECT (duplicate keys: the last value wins). */
  user_properties: Record<string, string>;
  /** Session id. */
  session_id: string;
}

/** A CONNECT was refused. */
export interface OnRegisterFailedEvent extends EventBase {
  /** Discriminator. */
  hook: "on_register_failed";
  /** Mountpoint. */
  mountpoint: string;
  /** MQTT client id. */
  client_id: string;
  /** Client IP as text. */
  peer_addr: string;
  /** Client TCP port. */
  peer_port: number;
  /** Username. */
  username: string;
  /** Clean session flag of the CONNECT. */
  clean_session: boolean;
  /** Why; an unknown number is kept as a number. */
  reason: RegistrationFailureReasonName | number;
}

/** A message was published. */
export interface OnPublishEvent extends EventBase {
  /** Discriminator. */
  hook: "on_publish";
  /** Username. */
  username: string;
  /** MQTT client id. */
  client_id: string;
  /** Mountpoint. */
  mountpoint: string;
  /** QoS. */
  qos: number;
  /** Topic. */
  topic: string;
  /** Payload bytes. */
  payload: Uint8Array;
  /** Retain flag. */
  retain: boolean;
  /** The matching ACL. */
  matched_acl: MatchedAcl;
  /** Session id. */
  session_id: string;
}

/** A client subscribed. */
export interface OnSubscribeEvent extends EventBase {
  /** Discriminator. */
  hook: "on_subscribe";
  /** MQTT client id. */
  client_id: string;
  /** Mountpoint. */
  mountpoint: string;
  /** Username. */
  username: string;
  /** Topics with their granted QoS. */
  topics: TopicInfo[];
  /** Session id. */
  session_id: string;
}

/** A client unsubscribed. */
export interface OnUnsubscribeEvent extends EventBase {
  /** Discriminator. */
  hook: "on_unsubscribe";
  /** Username. */
  username: string;
  /** MQTT client id. */
  client_id: string;
  /** Mountpoint. */
  mountpoint: string;
  /** Topic filters. */
  topics: string[];
  /** Session id. */
  session_id: string;
}

/** Fields shared by on_deliver and on_delivery_complete. */
export interface DeliveryFields extends EventBase {
  /** Username. */
  username: string;
  /** MQTT client id. */
  client_id: string;
  /** Mountpoint. */
  mountpoint: string;
  /** Topic. */
  topic: string;
  /** QoS. */
  qos: number;
  /** Retain flag. */
  is_retain: boolean;
  /** Payload bytes. */
  payload: Uint8Array;
  /** The matching ACL. */
  matched_acl: MatchedAcl;
  /** Whether the message was persisted. */
  persisted: boolean;
  /** Session id. */
  session_id: string;
}

/** A message is being delivered to a subscriber. */
export interface OnDeliverEvent extends DeliveryFields {
  /** Discriminator. */
  hook: "on_deliver";
}

/** A delivery completed. */
export interface OnDeliveryCompleteEvent extends DeliveryFields {
  /** Discriminator. */
  hook: "on_delivery_complete";
}

/** A message was queued for an offline client. */
export interface OnOfflineMessageEvent extends EventBase {
  /** Discriminator. */
  hook: "on_offline_message";
  /** MQTT client id. */
  client_id: string;
  /** Mountpoint. */
  mountpoint: string;
  /** QoS. */
  qos: number;
  /** Topic. */
  topic: string;
  /** Payload bytes. */
  payload: Uint8Array;
  /** Retain flag. */
  retain: boolean;
  /** Session id. */
  session_id: string;
}

/** Fields shared by on_client_wakeup and on_session_expired. */
export interface SessionFields extends EventBase {
  /** MQTT client id. */
  client_id: string;
  /** Mountpoint. */
  mountpoint: string;
  /** Session id. */
  session_id: string;
}

/** A client's session woke up (reconnect). */
export interface OnClientWakeupEvent extends SessionFields {
  /** Discriminator. */
  hook: "on_client_wakeup";
}

/** A session expired. */
export interface OnSessionExpiredEvent extends SessionFields {
  /** Discriminator. */
  hook: "on_session_expired";
}

/** Fields shared by on_client_offline and on_client_gone. */
export interface DisconnectFields extends EventBase {
  /** MQTT client id. */
  client_id: string;
  /** Mountpoint. */
  mountpoint: string;
  /** Disconnect reason; an unknown number is kept as a number. */
  reason: ReasonName | number;
  /** Username. */
  username: string;
  /** Session id. */
  session_id: string;
}

/** A client went offline (persistent session kept). */
export interface OnClientOfflineEvent extends DisconnectFields {
  /** Discriminator. */
  hook: "on_client_offline";
}

/** A client is gone (session removed). */
export interface OnClientGoneEvent extends DisconnectFields {
  /** Discriminator. */
  hook: "on_client_gone";
}

/** A message was dropped by the broker. */
export interface OnMessageDropEvent extends EventBase {
  /** Discriminator. */
  hook: "on_message_drop";
  /** MQTT client id. */
  client_id: string;
  /** Mountpoint. */
  mountpoint: string;
  /** QoS. */
  qos: number;
  /** Topic. */
  topic: string;
  /** Payload bytes. */
  payload: Uint8Array;
  /** Why, e.g. `"queue_full"`. */
  reason: string;
  /** The matching ACL. */
  matched_acl: MatchedAcl;
  /** Session id. */
  session_id: string;
}

/** Any decoded event; switch on `hook` to narrow. */
export type SidecarEvent =
  | OnRegisterEvent
  | OnRegisterFailedEvent
  | OnPublishEvent
  | OnSubscribeEvent
  | OnUnsubscribeEvent
  | OnDeliverEvent
  | OnDeliveryCompleteEvent
  | OnOfflineMessageEvent
  | OnClientWakeupEvent
  | OnClientOfflineEvent
  | OnClientGoneEvent
  | OnSessionExpiredEvent
  | OnMessageDropEvent;
