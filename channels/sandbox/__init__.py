"""A local stand-in for WeChat (and later Aliyun) that speaks their wire formats."""
