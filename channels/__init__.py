"""Provider channels of mall-notify (WeChat OA, and later MP and Aliyun SMS) and their sandbox."""
