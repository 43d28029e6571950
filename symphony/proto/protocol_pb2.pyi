from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CpuStatic(_message.Message):
    __slots__ = ("logical_cores", "physical_cores", "max_millicores_total")
    LOGICAL_CORES_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_CORES_FIELD_NUMBER: _ClassVar[int]
    MAX_MILLICORES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    logical_cores: int
    physical_cores: int
    max_millicores_total: int
    def __init__(self, logical_cores: _Optional[int] = ..., physical_cores: _Optional[int] = ..., max_millicores_total: _Optional[int] = ...) -> None: ...

class MemoryStatic(_message.Message):
    __slots__ = ("total_bytes",)
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    total_bytes: int
    def __init__(self, total_bytes: _Optional[int] = ...) -> None: ...

class StorageMountStatic(_message.Message):
    __slots__ = ("mount_point", "fs_type", "total_bytes")
    MOUNT_POINT_FIELD_NUMBER: _ClassVar[int]
    FS_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    mount_point: str
    fs_type: str
    total_bytes: int
    def __init__(self, mount_point: _Optional[str] = ..., fs_type: _Optional[str] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class GpuStatic(_message.Message):
    __slots__ = ("index", "name", "mem_total_bytes", "uuid")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEM_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    mem_total_bytes: int
    uuid: str
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., mem_total_bytes: _Optional[int] = ..., uuid: _Optional[str] = ...) -> None: ...

class CpuUsage(_message.Message):
    __slots__ = ("total_percent", "per_core_percent", "load_1m")
    TOTAL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    PER_CORE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    LOAD_1M_FIELD_NUMBER: _ClassVar[int]
    total_percent: float
    per_core_percent: _containers.RepeatedScalarFieldContainer[float]
    load_1m: float
    def __init__(self, total_percent: _Optional[float] = ..., per_core_percent: _Optional[_Iterable[float]] = ..., load_1m: _Optional[float] = ...) -> None: ...

class MemoryUsage(_message.Message):
    __slots__ = ("used_bytes", "available_bytes", "used_percent")
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_PERCENT_FIELD_NUMBER: _ClassVar[int]
    used_bytes: int
    available_bytes: int
    used_percent: float
    def __init__(self, used_bytes: _Optional[int] = ..., available_bytes: _Optional[int] = ..., used_percent: _Optional[float] = ...) -> None: ...

class StorageMountUsage(_message.Message):
    __slots__ = ("mount_point", "used_bytes", "available_bytes", "used_percent")
    MOUNT_POINT_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_PERCENT_FIELD_NUMBER: _ClassVar[int]
    mount_point: str
    used_bytes: int
    available_bytes: int
    used_percent: float
    def __init__(self, mount_point: _Optional[str] = ..., used_bytes: _Optional[int] = ..., available_bytes: _Optional[int] = ..., used_percent: _Optional[float] = ...) -> None: ...

class GpuUsage(_message.Message):
    __slots__ = ("index", "util_percent", "mem_util_percent", "mem_used_bytes", "mem_free_bytes", "has_temperature", "temperature_c", "has_power", "power_w")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    UTIL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEM_UTIL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEM_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEM_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    HAS_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_C_FIELD_NUMBER: _ClassVar[int]
    HAS_POWER_FIELD_NUMBER: _ClassVar[int]
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    index: int
    util_percent: float
    mem_util_percent: float
    mem_used_bytes: int
    mem_free_bytes: int
    has_temperature: bool
    temperature_c: int
    has_power: bool
    power_w: float
    def __init__(self, index: _Optional[int] = ..., util_percent: _Optional[float] = ..., mem_util_percent: _Optional[float] = ..., mem_used_bytes: _Optional[int] = ..., mem_free_bytes: _Optional[int] = ..., has_temperature: _Optional[bool] = ..., temperature_c: _Optional[int] = ..., has_power: _Optional[bool] = ..., power_w: _Optional[float] = ...) -> None: ...

class DeploymentStatus(_message.Message):
    __slots__ = ("job_id", "deployment_id", "epoch", "desired_state", "state", "pid", "started_at_ms", "stopped_at_ms", "has_exit_code", "last_exit_code", "restart_count", "reason", "spec_hash")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    DESIRED_STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESTART_COUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SPEC_HASH_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    deployment_id: str
    epoch: int
    desired_state: str
    state: str
    pid: int
    started_at_ms: int
    stopped_at_ms: int
    has_exit_code: bool
    last_exit_code: int
    restart_count: int
    reason: str
    spec_hash: str
    def __init__(self, job_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., epoch: _Optional[int] = ..., desired_state: _Optional[str] = ..., state: _Optional[str] = ..., pid: _Optional[int] = ..., started_at_ms: _Optional[int] = ..., stopped_at_ms: _Optional[int] = ..., has_exit_code: _Optional[bool] = ..., last_exit_code: _Optional[int] = ..., restart_count: _Optional[int] = ..., reason: _Optional[str] = ..., spec_hash: _Optional[str] = ...) -> None: ...

class DeploymentStatusList(_message.Message):
    __slots__ = ("deployments", "complete")
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentStatus]
    complete: bool
    def __init__(self, deployments: _Optional[_Iterable[_Union[DeploymentStatus, _Mapping]]] = ..., complete: _Optional[bool] = ...) -> None: ...

class NodeHello(_message.Message):
    __slots__ = ("node_id", "groups", "capacities_total", "cpu", "memory", "storage_mounts", "gpus", "heartbeat_sec", "advertise_address", "agent_version", "hostname", "jobs")
    class CapacitiesTotalEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    CAPACITIES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    STORAGE_MOUNTS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_SEC_FIELD_NUMBER: _ClassVar[int]
    ADVERTISE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    groups: _containers.RepeatedScalarFieldContainer[str]
    capacities_total: _containers.ScalarMap[str, float]
    cpu: CpuStatic
    memory: MemoryStatic
    storage_mounts: _containers.RepeatedCompositeFieldContainer[StorageMountStatic]
    gpus: _containers.RepeatedCompositeFieldContainer[GpuStatic]
    heartbeat_sec: float
    advertise_address: str
    agent_version: str
    hostname: str
    jobs: DeploymentStatusList
    def __init__(self, node_id: _Optional[str] = ..., groups: _Optional[_Iterable[str]] = ..., capacities_total: _Optional[_Mapping[str, float]] = ..., cpu: _Optional[_Union[CpuStatic, _Mapping]] = ..., memory: _Optional[_Union[MemoryStatic, _Mapping]] = ..., storage_mounts: _Optional[_Iterable[_Union[StorageMountStatic, _Mapping]]] = ..., gpus: _Optional[_Iterable[_Union[GpuStatic, _Mapping]]] = ..., heartbeat_sec: _Optional[float] = ..., advertise_address: _Optional[str] = ..., agent_version: _Optional[str] = ..., hostname: _Optional[str] = ..., jobs: _Optional[_Union[DeploymentStatusList, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("node_id", "timestamp_unix_ms", "total_capacities_used", "cpu", "memory", "storage_mounts", "gpus")
    class TotalCapacitiesUsedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CAPACITIES_USED_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    STORAGE_MOUNTS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    timestamp_unix_ms: int
    total_capacities_used: _containers.ScalarMap[str, float]
    cpu: CpuUsage
    memory: MemoryUsage
    storage_mounts: _containers.RepeatedCompositeFieldContainer[StorageMountUsage]
    gpus: _containers.RepeatedCompositeFieldContainer[GpuUsage]
    def __init__(self, node_id: _Optional[str] = ..., timestamp_unix_ms: _Optional[int] = ..., total_capacities_used: _Optional[_Mapping[str, float]] = ..., cpu: _Optional[_Union[CpuUsage, _Mapping]] = ..., memory: _Optional[_Union[MemoryUsage, _Mapping]] = ..., storage_mounts: _Optional[_Iterable[_Union[StorageMountUsage, _Mapping]]] = ..., gpus: _Optional[_Iterable[_Union[GpuUsage, _Mapping]]] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("timestamp_unix_ms", "stream", "line", "end_offset")
    TIMESTAMP_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    timestamp_unix_ms: int
    stream: str
    line: str
    end_offset: int
    def __init__(self, timestamp_unix_ms: _Optional[int] = ..., stream: _Optional[str] = ..., line: _Optional[str] = ..., end_offset: _Optional[int] = ...) -> None: ...

class DeploymentLogs(_message.Message):
    __slots__ = ("deployment_id", "job_id", "epoch", "entries", "output_id")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ID_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    job_id: str
    epoch: int
    entries: _containers.RepeatedCompositeFieldContainer[LogEntry]
    output_id: str
    def __init__(self, deployment_id: _Optional[str] = ..., job_id: _Optional[str] = ..., epoch: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[LogEntry, _Mapping]]] = ..., output_id: _Optional[str] = ...) -> None: ...

class LogCursor(_message.Message):
    __slots__ = ("job_id", "output_id", "end_offset")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ID_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    output_id: str
    end_offset: int
    def __init__(self, job_id: _Optional[str] = ..., output_id: _Optional[str] = ..., end_offset: _Optional[int] = ...) -> None: ...

class ExecResult(_message.Message):
    __slots__ = ("request_id", "exit_code", "output", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    exit_code: int
    output: bytes
    error: str
    def __init__(self, request_id: _Optional[str] = ..., exit_code: _Optional[int] = ..., output: _Optional[bytes] = ..., error: _Optional[str] = ...) -> None: ...

class NodeToConductor(_message.Message):
    __slots__ = ("hello", "heartbeat", "deployment_status_list", "deployment_logs", "ack", "exec_result")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_STATUS_LIST_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_LOGS_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    EXEC_RESULT_FIELD_NUMBER: _ClassVar[int]
    hello: NodeHello
    heartbeat: Heartbeat
    deployment_status_list: DeploymentStatusList
    deployment_logs: DeploymentLogs
    ack: Ack
    exec_result: ExecResult
    def __init__(self, hello: _Optional[_Union[NodeHello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., deployment_status_list: _Optional[_Union[DeploymentStatusList, _Mapping]] = ..., deployment_logs: _Optional[_Union[DeploymentLogs, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., exec_result: _Optional[_Union[ExecResult, _Mapping]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("message", "ref_seq", "ok")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REF_SEQ_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    message: str
    ref_seq: int
    ok: bool
    def __init__(self, message: _Optional[str] = ..., ref_seq: _Optional[int] = ..., ok: _Optional[bool] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("node_id", "server_time_unix_ms", "lost_after_sec", "log_cursors")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    LOST_AFTER_SEC_FIELD_NUMBER: _ClassVar[int]
    LOG_CURSORS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    server_time_unix_ms: int
    lost_after_sec: float
    log_cursors: _containers.RepeatedCompositeFieldContainer[LogCursor]
    def __init__(self, node_id: _Optional[str] = ..., server_time_unix_ms: _Optional[int] = ..., lost_after_sec: _Optional[float] = ..., log_cursors: _Optional[_Iterable[_Union[LogCursor, _Mapping]]] = ...) -> None: ...

class DeploymentReq(_message.Message):
    __slots__ = ("specification", "job_id", "deployment_id", "epoch", "replica", "spec_hash")
    SPECIFICATION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    SPEC_HASH_FIELD_NUMBER: _ClassVar[int]
    specification: str
    job_id: str
    deployment_id: str
    epoch: int
    replica: int
    spec_hash: str
    def __init__(self, specification: _Optional[str] = ..., job_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., epoch: _Optional[int] = ..., replica: _Optional[int] = ..., spec_hash: _Optional[str] = ...) -> None: ...

class DeploymentUpdate(_message.Message):
    __slots__ = ("deployment_id", "job_id", "epoch", "status", "spec", "trigger_restart", "spec_hash")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_RESTART_FIELD_NUMBER: _ClassVar[int]
    SPEC_HASH_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    job_id: str
    epoch: int
    status: str
    spec: str
    trigger_restart: bool
    spec_hash: str
    def __init__(self, deployment_id: _Optional[str] = ..., job_id: _Optional[str] = ..., epoch: _Optional[int] = ..., status: _Optional[str] = ..., spec: _Optional[str] = ..., trigger_restart: _Optional[bool] = ..., spec_hash: _Optional[str] = ...) -> None: ...

class DeploymentLogsRequest(_message.Message):
    __slots__ = ("deployment_id", "enable", "since_ms", "tail", "streams", "job_id")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLE_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    enable: bool
    since_ms: int
    tail: int
    streams: _containers.RepeatedScalarFieldContainer[str]
    job_id: str
    def __init__(self, deployment_id: _Optional[str] = ..., enable: _Optional[bool] = ..., since_ms: _Optional[int] = ..., tail: _Optional[int] = ..., streams: _Optional[_Iterable[str]] = ..., job_id: _Optional[str] = ...) -> None: ...

class ExecRequest(_message.Message):
    __slots__ = ("request_id", "job_id", "argv", "timeout_sec")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SEC_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    job_id: str
    argv: _containers.RepeatedScalarFieldContainer[str]
    timeout_sec: float
    def __init__(self, request_id: _Optional[str] = ..., job_id: _Optional[str] = ..., argv: _Optional[_Iterable[str]] = ..., timeout_sec: _Optional[float] = ...) -> None: ...

class ConductorToNode(_message.Message):
    __slots__ = ("seq", "ack", "deployment_req", "welcome", "deployment_update", "deployment_logs_request", "exec_request")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_REQ_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_UPDATE_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_LOGS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    EXEC_REQUEST_FIELD_NUMBER: _ClassVar[int]
    seq: int
    ack: Ack
    deployment_req: DeploymentReq
    welcome: Welcome
    deployment_update: DeploymentUpdate
    deployment_logs_request: DeploymentLogsRequest
    exec_request: ExecRequest
    def __init__(self, seq: _Optional[int] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., deployment_req: _Optional[_Union[DeploymentReq, _Mapping]] = ..., welcome: _Optional[_Union[Welcome, _Mapping]] = ..., deployment_update: _Optional[_Union[DeploymentUpdate, _Mapping]] = ..., deployment_logs_request: _Optional[_Union[DeploymentLogsRequest, _Mapping]] = ..., exec_request: _Optional[_Union[ExecRequest, _Mapping]] = ...) -> None: ...
