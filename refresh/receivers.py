"""Receivers of other libraries' signals: django-q2 reports each finished task."""
from django.dispatch import receiver
from django_q.signals import post_execute

from refresh.services.schedules import report_failed_task


@receiver(post_execute, dispatch_uid="refresh.report_failed_scheduled_task")
def scheduled_task_finished(sender, *, task: dict, **kwargs):
    report_failed_task(task=task)
